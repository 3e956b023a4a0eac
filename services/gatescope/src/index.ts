export { startGatescope } from './gatescope.js';
export type { Gatescope } from './gatescope.js';

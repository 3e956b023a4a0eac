export { startGatescope, openStorage } from './gatescope.js';
export type { Gatescope } from './gatescope.js';

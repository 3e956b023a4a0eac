import { fileURLToPath } from 'node:url';

/** Absolute path of the built web UI (`vite build` output), served by the API at `/`. */
export const webRoot = fileURLToPath(new URL('./dist', import.meta.url));

/** Absolute path of the built web UI (`vite build` output), served by the API at `/`. */
export declare const webRoot: string;

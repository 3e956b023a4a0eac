#!/usr/bin/env node
// The all-in-one gatescope: collector + API + live server + UI in one process (embedded engine by default).
import { runService } from '@gatescope/runtime';
import { startGatescope } from './gatescope.js';

await runService('gatescope', startGatescope);

// The all-in-one gatescope: collector + API + live server + UI in one process (embedded engine by default).
// `gatescope migrate` instead applies the schema and exits (the scale-out migration step).
import { runService } from '@gatescope/runtime';
import { startGatescope } from './gatescope.js';

const command = process.argv[2];
if (command === 'migrate') await import('./migrate.js');
else if (command === undefined) await runService('gatescope', startGatescope);
else {
  console.error(
    `Unknown command "${command}". Usage: gatescope          (run everything)\n       gatescope migrate  (apply the schema and exit)`,
  );
  process.exit(2);
}

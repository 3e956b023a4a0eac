// The all-in-one gatescope: collector + API + live server + UI in one process (embedded engine by default).
// `gatescope migrate` instead applies the schema and exits (the scale-out migration step); `gatescope dead-letters …`
// lists, shows or replays the dead letters and exits.
import { runService } from '@gatescope/runtime';
import { deadLettersCli } from './dead-letters.js';
import { startGatescope } from './gatescope.js';

const command = process.argv[2];
if (command === 'migrate') await import('./migrate.js');
else if (command === 'dead-letters') process.exit(await deadLettersCli(process.argv.slice(3), process.env));
else if (command === undefined) await runService('gatescope', startGatescope);
else {
  console.error(
    `Unknown command "${command}". Usage: gatescope               (run everything)\n` +
      '       gatescope migrate       (apply the schema and exit)\n' +
      '       gatescope dead-letters  (list, show or replay dead letters)',
  );
  process.exit(2);
}

// `npm run dashboards`: writes the panel SQL rendered by @gatescope/query (grafana.ts) into the shipped Grafana
// dashboard, so its panels compute what the API computes. test/e2e/dashboards.test.ts fails when the two drift.
import { readFileSync, writeFileSync } from 'node:fs';
import { grafanaPanels, grafanaRouteVariableSql } from '@gatescope/query';

const file = new URL('../../../dashboards/grafana/gatescope-overview.json', import.meta.url);
const dashboard = JSON.parse(readFileSync(file, 'utf8'));
const panels = grafanaPanels();
if (dashboard.panels.length !== panels.length)
  throw new Error(`the dashboard has ${dashboard.panels.length} panels, grafana.ts renders ${panels.length}`);
dashboard.panels.forEach((panel, i) => {
  panel.title = panels[i].title;
  for (const target of panel.targets) target.rawSql = panels[i].rawSql;
});
dashboard.templating.list[0].query = grafanaRouteVariableSql();
writeFileSync(file, JSON.stringify(dashboard, null, 2) + '\n');
console.log(`wrote ${panels.length} panels to ${file.pathname}`);

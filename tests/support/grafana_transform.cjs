// Runs Grafana panels' transformations with Grafana's own code (@grafana/data) on frames built
// as the Redis data source's backend builds them. Called by tests/system/test_grafana.py.
//
// stdin:  {"modules": "<dir holding node_modules>", "panels": [{"title", "transformations", "frames"}]}
//         a frame is {"fields": [{"name", "type": "string"|"number"|"time", "values": [...]}]}
// stdout: [{"title", "error"?, "frames": [{"fields": [{"name", "type", "values"}]}]}]
'use strict';
// @grafana/data reads feature toggles from the browser's boot data at import time.
globalThis.window = globalThis;
globalThis.grafanaBootData = { settings: { featureToggles: {} } };

const fs = require('fs');
const path = require('path');
const request = JSON.parse(fs.readFileSync(0, 'utf8'));
const modules = path.join(request.modules, 'node_modules');
const grafana = require(path.join(modules, '@grafana', 'data'));
const { firstValueFrom } = require(path.join(modules, 'rxjs'));

// Grafana's app registers the standard transformers at start-up; seriesToColumns is an alias entry.
const byId = new Map(Object.values(grafana.standardTransformers).map((t) => [t.id, t]));
grafana.standardTransformersRegistry.setInit(() =>
  [...byId.values()].map((t) => ({ id: t.id, aliasIds: t.aliasIds, name: t.name, transformation: t })));

function toJson(frame) {
  return {
    fields: frame.fields.map((field) => ({
      name: grafana.getFieldDisplayName(field, frame),
      type: field.type,
      values: Array.from(field.values),
    })),
  };
}

async function run(panel) {
  const unknown = panel.transformations.filter((t) => !byId.has(t.id)).map((t) => t.id);
  if (unknown.length) {
    return { title: panel.title, error: `not in @grafana/data: ${unknown.join(', ')}`, frames: [] };
  }
  const frames = panel.frames.map((frame, index) => grafana.createDataFrame({
    refId: String.fromCharCode(65 + index),
    fields: frame.fields.map((f) => ({ name: f.name, type: f.type, values: f.values, config: f.config || {} })),
  }));
  const result = await firstValueFrom(grafana.transformDataFrame(panel.transformations, frames));
  return { title: panel.title, frames: result.map(toJson) };
}

Promise.all(request.panels.map(run)).then(
  (results) => process.stdout.write(JSON.stringify(results)),
  (error) => { process.stderr.write(String(error && error.stack || error)); process.exit(1); },
);

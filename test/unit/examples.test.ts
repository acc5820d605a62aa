/**
 * The examples folder never rots: every topology in it validates (its
 * ${env:...} variables set to placeholders), starts with the yaml-language-server line
 * pointing at the schema by a relative path, and names its databases by ${env:...};
 * every other YAML file in it parses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { packageRoot } from '../../engine/paths.js';
import { validateTopologyText } from '../../engine/topology/load.js';

const root = packageRoot();
const examples = path.join(root, 'examples');
const yamlFiles = (fs.readdirSync(examples, { recursive: true }) as string[])
  .filter((f) => /\.ya?ml$/.test(f))
  .map((f) => path.join(examples, f))
  .sort();

function isTopology(file: string): boolean {
  const doc = YAML.parse(fs.readFileSync(file, 'utf8')) as unknown;
  return typeof doc === 'object' && doc !== null && 'version' in doc && 'databases' in doc;
}

const topologies = yamlFiles.filter(isTopology);

/** The ${env:NAME} variables of a file (those without a default), with placeholder values. */
function placeholderEnv(text: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const m of text.matchAll(/\$\{env:([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}/g)) {
    // an entry of another engine takes its own url scheme
    const scheme = /MARIADB|MYSQL/.test(m[1]!) ? 'mysql' : 'postgres';
    env[m[1]!] = /URL$/.test(m[1]!) ? `${scheme}://bucardo@${m[1]!.toLowerCase()}.example.com:5432/app` : 'placeholder';
    if (/REDIS_URL$/.test(m[1]!)) env[m[1]!] = 'redis://:placeholder@redis.example.com:6379/0';
  }
  return env;
}

test('examples/ holds the pgbench topologies, the workflow, the unit and the deployment', () => {
  const rel = yamlFiles.map((f) => path.relative(examples, f).split(path.sep).join('/'));
  for (const f of ['pgbench/one-way.yaml', 'pgbench/multi-source.yaml', 'github-actions/bucardo.yml', 'kubernetes/deployment.yaml'])
    assert.ok(rel.includes(f), f);
  assert.ok(fs.existsSync(path.join(examples, 'systemd/bucardo.service')));
  assert.ok(fs.existsSync(path.join(examples, 'pgbench/README.md')));
  assert.ok(topologies.length >= 2);
});

for (const file of topologies) {
  const rel = path.relative(root, file);
  test(`${rel} is a valid topology`, () => {
    const text = fs.readFileSync(file, 'utf8');
    const first = text.split('\n')[0]!;
    const m = /^# yaml-language-server: \$schema=(\S+)$/.exec(first);
    assert.ok(m, `${rel} starts with "# yaml-language-server: $schema=..."`);
    assert.ok(!path.isAbsolute(m[1]!) && !/^[a-z]+:/.test(m[1]!), 'the schema path is relative');
    assert.equal(path.resolve(path.dirname(file), m[1]!), path.join(root, 'schemas', 'topology.schema.json'));

    const env = placeholderEnv(text);
    const t = validateTopologyText(text, file, env);
    assert.ok(t.databases.size >= 1 && t.syncs.size >= 1);
    for (const db of t.databases.values()) {
      assert.ok(db.connection.url, `database ${db.name} has a url`);
    }
    // Every url is an ${env:...} reference: no host or password is written in an example.
    const doc = YAML.parse(text) as { databases: Record<string, { url?: string; password?: string; type?: string; path?: string }> };
    for (const [name, db] of Object.entries(doc.databases)) {
      // a SQLite file is named by a path relative to the topology (SPEC section 7)
      if (db.type === 'sqlite') {
        assert.ok(db.path && !path.isAbsolute(db.path), `database ${name} of ${rel} names its file relative to the topology`);
        continue;
      }
      assert.match(db.url ?? '', /^\$\{env:[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}$/, `database ${name} of ${rel} takes its url from the environment`);
      assert.equal(db.password, undefined);
    }
    // An unset variable is named by validation.
    const missing = Object.keys(env)[0]!;
    assert.throws(() => validateTopologyText(text, file, { ...env, [missing]: undefined }), new RegExp(missing));
  });
}

for (const file of yamlFiles.filter((f) => !isTopology(f))) {
  test(`${path.relative(root, file)} parses as YAML`, () => {
    const docs = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'));
    for (const d of docs) assert.deepEqual(d.errors, []);
  });
}

test('the GitHub Actions workflow posts the markdown plan on pull requests and applies on main', () => {
  const wf = YAML.parse(fs.readFileSync(path.join(examples, 'github-actions/bucardo.yml'), 'utf8')) as {
    on: Record<string, unknown>;
    jobs: Record<string, { steps: { run?: string }[] }>;
  };
  assert.ok('pull_request' in wf.on && 'push' in wf.on);
  const runs = (job: string) => wf.jobs[job]!.steps.map((s) => s.run ?? '').join('\n');
  assert.match(runs('plan'), /bucardo plan .*--format markdown/);
  assert.match(runs('apply'), /bucardo apply .*--auto-approve/);
});

test('the systemd unit and the Deployment start `bucardo run`; the Deployment runs 2 replicas, ready by /healthz on the metrics port', () => {
  const unit = fs.readFileSync(path.join(examples, 'systemd/bucardo.service'), 'utf8');
  assert.match(unit, /^ExecStart=.*bucardo run\b/m);
  assert.match(unit, /^\[Install\]$/m);
  const dep = YAML.parse(fs.readFileSync(path.join(examples, 'kubernetes/deployment.yaml'), 'utf8')) as {
    kind: string;
    spec: {
      replicas: number;
      template: {
        spec: {
          containers: { args: string[]; ports: { name: string; containerPort: number }[]; readinessProbe: { httpGet?: { path: string; port: string } } }[];
        };
      };
    };
  };
  assert.equal(dep.kind, 'Deployment');
  const runner = dep.spec.template.spec.containers[0]!;
  assert.equal(runner.args[0], 'run');
  // failover: a second runner, and a pod counts as ready by what the runner says of itself
  assert.equal(dep.spec.replicas, 2);
  assert.equal(runner.readinessProbe.httpGet?.path, '/healthz');
  const port = runner.ports.find((p) => p.name === runner.readinessProbe.httpGet?.port);
  assert.equal(String(port?.containerPort), runner.args[runner.args.indexOf('--metrics-port') + 1]);
});

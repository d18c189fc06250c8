#!/usr/bin/env node
import { parseCliArgs } from './config/args.js';
import { loadConfig } from './config/load.js';
import { loggerFromConfig } from './logging/from-config.js';
import { openDatabase } from './db/open.js';
import { migrate } from './db/migrate.js';
import { startMediaRepo } from './main.js';
import { VERSION } from './version.js';
import { isKeyCommand, runKeyCommand } from './cli-keys.js';
import { runCheckDatastores } from './cli-check.js';
import { runMigrationCommand } from './cli-import.js';

const USAGE = `media-repo ${VERSION}: a Matrix media repository

Usage:
  media-repo [-config PATH]            start the server (PATH: a YAML file or a directory of them)
  media-repo migrate [-config PATH]    apply database migrations and exit
  media-repo check-datastores [-config PATH]
                                       list orphaned objects and rows whose blob is missing
                                       (exit code 0 when there are none)
  media-repo import mmr|synapse|archive [flags]
                                       adopt an MMR deployment, import a Synapse media store,
                                       or import export archives (--help for each one's flags)
  media-repo export --user ID | --server NAME --out DIR [flags]
                                       write a GDPR export archive (MMR's format v2)
  media-repo --version                 print the version
  media-repo generate-signing-key [-output FILE] [-format mmr|synapse|dendrite]
                                       make a federation signing key (default: mmr format, stdout)
  media-repo combine-signing-keys -output FILE [-format mmr|synapse|dendrite] IN...
                                       merge key files of any format into one file

PATH may also come from REPO_CONFIG. Without one, embedded defaults are used: homeserver
"localhost", files under ./data, and a shared-secret admin token in ./data/shared-secret.`;

async function main(): Promise<void> {
  const args = parseCliArgs(process.argv.slice(2));
  if (args.command === 'version') {
    console.log(`media-repo ${VERSION}`);
    return;
  }
  if (args.command === 'import' || args.command === 'export') {
    process.exitCode = await runMigrationCommand(args.command, args.rest ?? []);
    return;
  }
  if (isKeyCommand(args.command)) {
    process.exitCode = runKeyCommand(args.command, args.keys!);
    return;
  }
  if (args.command === 'help') {
    if (args.error) {
      console.error(`media-repo: ${args.error}\n`);
      console.error(USAGE);
      process.exit(2);
    }
    console.log(USAGE);
    return;
  }
  const config = await loadConfig(args.configPath);
  const g = config.global;
  const log = loggerFromConfig(g);
  if (!args.configPath) {
    log.warn('no config file given (-config or REPO_CONFIG): running on embedded defaults', {
      homeserver: 'localhost',
      sharedSecretFile: 'data/shared-secret',
    });
  }
  for (const w of config.warnings ?? []) log.warn('config warning', { warning: w });
  if (args.command === 'migrate') {
    const db = await openDatabase(g, log);
    const n = await migrate(db, log);
    await db.close();
    log.info('migrations complete', { applied: n });
    return;
  }
  if (args.command === 'check-datastores') {
    process.exitCode = await runCheckDatastores(config, log, (line) => console.log(line));
    return;
  }
  const repo = await startMediaRepo({ config, configPath: args.configPath, log });
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { signal });
    // SIGINT is Ctrl-C at a terminal: no load balancer watches that run, so no grace period.
    repo
      .stop(signal === 'SIGINT' ? { graceMs: 0 } : {})
      .then(() => log.closeFile())
      .then(
        () => process.exit(0),
        (e) => {
          log.error('shutdown failed', { error: e as Error });
          process.exit(1);
        },
      );
  };
  // An HTTP thread died: stop the rest and exit non-zero, so the supervisor restarts the process.
  void repo.failed.then((e) => {
    if (stopping) return;
    stopping = true;
    log.error('stopping after an HTTP thread failed', { error: e });
    void repo
      .stop({ graceMs: 0 })
      .then(() => log.closeFile())
      .finally(() => process.exit(1));
  });
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // systemctl reload (ExecReload=kill -HUP): the same reload a saved edit triggers.
  process.on('SIGHUP', () => {
    log.info('SIGHUP: reloading the config', { path: args.configPath ?? '(embedded defaults)' });
    void repo.reload();
  });
}

main().catch((e: Error) => {
  // Config and start-up errors name what is wrong; no stack trace needed for those.
  console.error(`media-repo: ${e.name === 'ConfigError' ? e.message : (e.stack ?? e.message)}`);
  process.exit(1);
});

/** `mailshim serve`: run the daemon until SIGTERM/SIGINT; SIGHUP reloads the config. */
import { loadConfig } from '../config/load.js';
import { permissionProblems } from '../config/permissions.js';
import { ConfigError } from '../errors.js';
import { Daemon } from '../daemon.js';
import { createLogger } from '../log.js';

export async function serve(configFile: string): Promise<number> {
  const config = loadConfig(configFile);
  const unsafe = permissionProblems(config);
  if (unsafe.length > 0) throw new ConfigError(`refusing to start: ${unsafe.join('; ')}`, unsafe);
  const log = createLogger(config.log.level);
  const daemon = await Daemon.start(config, log);
  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ event: 'signal', signal }, `${signal} received`);
      daemon.stop().then(
        () => resolve(0),
        (error: unknown) => {
          log.error({ err: error }, 'error while stopping');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => void daemon.reload());
  });
}

import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

/** The library's own Lambda handlers, bundled at build time (`npm run build`) into `dist/handlers/<name>/`. */
export type LibraryHandler = 'relay' | 'recovery' | 'audit';

const PACKAGE_NAME = 'serverless-outbox';

/** The package root: the folder of the nearest package.json named serverless-outbox above this file. */
function packageRoot(): string {
  let dir = import.meta.dirname;
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest)) {
      const name = (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name;
      if (name === PACKAGE_NAME) return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new Error(
        `cannot find the ${PACKAGE_NAME} package root above ${import.meta.dirname}: reinstall the package`,
      );
    }
    dir = parent;
  }
}

/**
 * Folder holding the prebuilt bundle (`index.mjs`) of a library handler, for `lambda.Code.fromAsset`. The package
 * ships these folders, so a user's synth bundles nothing of the library's and needs no lock file of ours.
 */
export function handlerAssetDir(handler: LibraryHandler): string {
  const dir = path.join(packageRoot(), 'dist', 'handlers', handler);
  if (!existsSync(path.join(dir, 'index.mjs'))) {
    throw new Error(
      `the prebuilt ${handler} handler is missing (${dir}/index.mjs): in a clone of serverless-outbox run \`npm run build\`; an installed package always has it, so reinstall it`,
    );
  }
  return dir;
}

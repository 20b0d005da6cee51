/** The offline runtime's emulators are optional peer dependencies: only teams that run offline install them. */
export class MissingOfflineDependencyError extends Error {
  override name = 'MissingOfflineDependencyError';
  readonly packageName: string;
  constructor(packageName: string, cause: unknown) {
    super(
      `the offline runtime needs the npm package "${packageName}": install it with \`npm install --save-dev ${packageName}\``,
      { cause },
    );
    this.packageName = packageName;
  }
}

/** Imports an optional peer dependency, or throws MissingOfflineDependencyError saying how to install it. */
export async function importOptionalPeer<T>(packageName: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') {
      throw new MissingOfflineDependencyError(packageName, error);
    }
    throw error;
  }
}

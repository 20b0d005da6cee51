/** What a synth script hands the offline runtime (see `OfflineStackOptions.synthScript`). */
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';

export const SYNTH_RESULT_FILE = 'synth.json';

export interface SynthResult<Resources extends Record<string, string> = Record<string, string>> {
  /** The stack's template in the cloud assembly (`cdk.out/<stack>.template.json`). */
  readonly templateFile: string;
  /** The cloud assembly folder that `aws:asset:path` metadata is relative to. */
  readonly assetRoot: string;
  readonly stackName: string;
  /** Logical ids a workload needs, by a name of the script's choosing. */
  readonly resources: Resources;
}

/** Writes `<workDir>/synth.json`: call it at the end of a synth script. */
export async function writeSynthResult(workDir: string, result: SynthResult): Promise<void> {
  await writeFile(path.join(workDir, SYNTH_RESULT_FILE), JSON.stringify(result));
}

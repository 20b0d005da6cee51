/** `npm start -- --serve`: placeholder until the serve mode lands. */
export async function serve(_options: { workDir: string }): Promise<number> {
  process.stderr.write('--serve is not available yet\n');
  return 2;
}

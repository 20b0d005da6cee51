/** The files of the README's "Use it in your project" section: its ```ts blocks with a `title="<path>"`. */
export function readmeProjectFiles(readme: string): Record<string, string> {
  const start = readme.indexOf('\n## Use it in your project');
  if (start < 0) throw new Error('README.md has no "## Use it in your project" section');
  const next = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, next < 0 ? undefined : next);
  const files: Record<string, string> = {};
  for (const match of section.matchAll(/```ts title="([^"]+)"\n([\s\S]*?)```/g)) {
    const [, file, text] = match;
    if (file && text !== undefined) files[file] = text;
  }
  if (Object.keys(files).length === 0)
    throw new Error('the "Use it in your project" section has no titled snippets');
  return files;
}

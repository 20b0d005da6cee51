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

/** One `import ... from '<specifier>'` of a README snippet: the names it imports and whether the snippet is titled. */
export interface SnippetImport {
  readonly specifier: string;
  /** Value (not `type`) names imported with `{ ... }`. */
  readonly values: readonly string[];
  readonly titled: boolean;
}

/** Every import of every ```ts block of the README. */
export function readmeImports(readme: string): SnippetImport[] {
  const imports: SnippetImport[] = [];
  for (const block of readme.matchAll(/```ts( title="[^"]+")?\n([\s\S]*?)```/g)) {
    for (const statement of (block[2] ?? '').matchAll(/import\s+(type\s+)?([\s\S]*?)\s+from\s+'([^']+)'/g)) {
      const typeOnly = Boolean(statement[1]);
      const clause = statement[2] ?? '';
      const named = /\{([\s\S]*)\}/.exec(clause)?.[1] ?? '';
      const values = typeOnly
        ? []
        : named
            .split(',')
            .map((part) => part.trim())
            .filter((part) => part && !part.startsWith('type '))
            .map((part) => part.split(/\s+as\s+/)[0] as string);
      imports.push({ specifier: statement[3] ?? '', values, titled: Boolean(block[1]) });
    }
  }
  return imports;
}

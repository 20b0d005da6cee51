/** Adds assignments to an UpdateExpression: into its SET clause (DynamoDB allows one), or as a new clause. */
export function withSetAssignments(expression: string | undefined, assignments: string): string {
  if (!expression?.trim()) return `SET ${assignments}`;
  // SET is a reserved word, so a bare `set` followed by a space can only be the clause keyword.
  const set = /(^|\s)SET\s/i.exec(expression);
  if (!set) return `${expression} SET ${assignments}`;
  const at = set.index + set[0].length;
  return `${expression.slice(0, at)}${assignments}, ${expression.slice(at)}`;
}

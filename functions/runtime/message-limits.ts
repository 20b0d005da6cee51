/**
 * What the publish targets (SNS FIFO, SQS FIFO, EventBridge) accept: one definition for the writer, which refuses
 * at write time what a target would refuse, and for the relay, which checks again before publishing.
 * Dependency-free.
 */

/**
 * Whether a UTF-16 code unit (seen with its neighbours) cannot be sent: C0 and C1 controls, DEL, the
 * non-characters U+FFFE/U+FFFF, and surrogates that are not part of a pair (the SNS client's query-string
 * encoder throws URIError on those before sending anything).
 */
function isUnsendable(code: number, previous: number, next: number): boolean {
  if (code <= 0x1f || (code >= 0x7f && code <= 0x9f) || code === 0xfffe || code === 0xffff) return true;
  const isHigh = (c: number) => c >= 0xd800 && c <= 0xdbff;
  const isLow = (c: number) => c >= 0xdc00 && c <= 0xdfff;
  if (isHigh(code)) return !isLow(next);
  if (isLow(code)) return !isHigh(previous);
  return false;
}

/**
 * Why `value` cannot be a message attribute (`type`, `source`, `subject`, `partitionkey`), or undefined when it
 * can. The reason names the offending character's position, never the text itself.
 */
export function attributeTextProblem(value: string): string | undefined {
  let index = 0;
  while (
    index < value.length &&
    !isUnsendable(value.charCodeAt(index), value.charCodeAt(index - 1), value.charCodeAt(index + 1))
  ) {
    index++;
  }
  if (index === value.length) return undefined;
  const code = value.charCodeAt(index);
  const hex = `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  const what =
    code >= 0xd800 && code <= 0xdfff
      ? 'a lone UTF-16 surrogate'
      : code >= 0xfffe
        ? 'the non-character'
        : 'the control character';
  return `contains ${what} ${hex} at index ${index}; SNS and SQS message attributes cannot carry it`;
}

/**
 * Terminal-safe text: what the CLI prints for people never carries a character that a terminal
 * would act on or that would make text read differently from what it is. C0 and C1 controls (ESC
 * starts a terminal escape sequence), DEL, format characters (bidi overrides such as U+202E,
 * zero-width characters), line and paragraph separators and unpaired surrogates are shown as
 * `\uXXXX`. That is also a valid JSON escape, so JSON output stays valid and means the same.
 * Tabs and newlines are left to the caller (tables flatten them; messages keep them).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find them
const UNSAFE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\p{Cf}\u2028\u2029]|\p{Cs}/gu

export function terminalSafe(s: string): string {
  return s.replace(UNSAFE, (c) => {
    let out = ''
    for (let i = 0; i < c.length; i++) out += `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`
    return out
  })
}

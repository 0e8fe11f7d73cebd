import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { renderTable } from '../src/lib/table.js'
import { terminalSafe } from '../src/lib/terminal-text.js'

describe('terminal-safe output', () => {
  it('escapes controls, bidi and zero-width characters and unpaired surrogates as \\uXXXX', () => {
    assert.equal(terminalSafe('evil\u001b[31mred'), 'evil\\u001b[31mred')
    assert.equal(terminalSafe('evil\u202egnp.exe'), 'evil\\u202egnp.exe')
    assert.equal(terminalSafe('a\u200bb\ufeffc'), 'a\\u200bb\\ufeffc')
    assert.equal(terminalSafe('nul\u0000 del\u007f csi\u009b'), 'nul\\u0000 del\\u007f csi\\u009b')
    assert.equal(terminalSafe('lone\ud800'), 'lone\\ud800')
    assert.equal(terminalSafe('tag\u{e0041}'), 'tag\\udb40\\udc41')
    assert.equal(terminalSafe('ls\u2028ps\u2029'), 'ls\\u2028ps\\u2029')
  })
  it('leaves ordinary text, newlines, tabs and paired surrogates alone', () => {
    for (const s of ['café 東京 🚀', 'line one\nline two\ttab', 'plain ascii-1.2_3'])
      assert.equal(terminalSafe(s), s)
  })
  it('keeps JSON valid and equal: the escapes are JSON escapes', () => {
    const v = { name: 'evil\u202egnp\u001b', attrs: ['z\u200bw'] }
    const text = terminalSafe(JSON.stringify(v, null, 2))
    assert.doesNotMatch(text, /[\u001b\u202e\u200b]/)
    assert.deepEqual(JSON.parse(text), v)
  })
  it('table cells never carry an escape sequence', () => {
    const t = renderTable([{ name: 'x\u001b]0;owned\u0007y' }], [{ header: 'NAME', value: (r) => r.name }])
    assert.doesNotMatch(t, /[\u0000-\u0008\u000b-\u001f\u007f]/)
    assert.match(t, /x\\u001b\]0;owned\\u0007y/)
  })
})

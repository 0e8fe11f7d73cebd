/**
 * Reads lines from the terminal in raw mode (so pre-typed input is kept across prompts), echoing
 * what is typed unless hidden. Ctrl-C / Ctrl-D / end of input read as null.
 */
export class TtyReader {
  private buf = ''
  private ended = false
  private wake: (() => void) | null = null
  private lastCr = false
  private readonly onData = (d: string) => {
    this.buf += d
    this.wake?.()
  }
  private readonly onEnd = () => {
    this.ended = true
    this.wake?.()
  }
  constructor() {
    process.stdin.setRawMode(true)
    process.stdin.setEncoding('utf8')
    process.stdin.on('data', this.onData)
    process.stdin.on('end', this.onEnd)
    process.stdin.resume()
  }
  async line(question: string, hidden: boolean): Promise<string | null> {
    process.stderr.write(question)
    let out = ''
    for (;;) {
      while (this.buf.length > 0) {
        const c = this.buf[0]!
        this.buf = this.buf.slice(1)
        if (c === '\n' && this.lastCr) {
          this.lastCr = false
          continue
        }
        this.lastCr = c === '\r'
        if (c === '\r' || c === '\n') {
          process.stderr.write('\n')
          return out
        }
        if (c === '\u0003' || c === '\u0004') {
          process.stderr.write('\n')
          return null
        }
        if (c === '\u007f' || c === '\b') {
          if (out.length > 0) {
            out = out.slice(0, -1)
            if (!hidden) process.stderr.write('\b \b')
          }
          continue
        }
        out += c
        if (!hidden) process.stderr.write(c)
      }
      if (this.ended) return null
      await new Promise<void>((r) => {
        this.wake = r
      })
      this.wake = null
    }
  }
  close(): void {
    process.stdin.off('data', this.onData)
    process.stdin.off('end', this.onEnd)
    process.stdin.setRawMode(false)
    process.stdin.pause()
  }
}

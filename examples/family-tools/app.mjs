// The family "Tool Pool" (who has which tool, who borrowed what) as an Express app with SQLite,
// made dark with two lines: the import and the zitify() call. It opens no port: only identities
// with a Dial policy for the service reach it, and each request knows who is calling
// (req.socket.remoteIdentity), so the site needs no accounts or passwords.
//
//   FAMILY_IDENTITY=host.json node examples/family-tools/app.mjs
import { fileURLToPath } from 'node:url'
import { zitify } from '@nullport/sdk'
import Database from 'better-sqlite3'
import express from 'express'

zitify({
  '127.0.0.1:18080': {
    identity: process.env.FAMILY_IDENTITY ?? './host.json',
    service: process.env.FAMILY_SERVICE ?? 'family.tools',
  },
})

const db = new Database(process.env.FAMILY_DB ?? fileURLToPath(new URL('./tools.db', import.meta.url)))
db.pragma('journal_mode = WAL')
db.exec(`
  CREATE TABLE IF NOT EXISTS tools (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    owner TEXT NOT NULL,
    borrowed_by TEXT,
    borrowed_at TEXT
  );
  CREATE TABLE IF NOT EXISTS loans (
    id INTEGER PRIMARY KEY,
    tool_id INTEGER NOT NULL REFERENCES tools(id) ON DELETE CASCADE,
    borrower TEXT NOT NULL,
    borrowed_at TEXT NOT NULL,
    returned_at TEXT
  );
`)
const q = {
  list: db.prepare(
    'SELECT id, name, owner, borrowed_by AS borrowedBy, borrowed_at AS borrowedAt FROM tools ORDER BY name',
  ),
  get: db.prepare('SELECT id, name, owner, borrowed_by AS borrowedBy FROM tools WHERE id = ?'),
  add: db.prepare('INSERT INTO tools (name, owner) VALUES (?, ?)'),
  borrow: db.prepare(
    "UPDATE tools SET borrowed_by = ?, borrowed_at = datetime('now') WHERE id = ? AND borrowed_by IS NULL AND owner <> ?",
  ),
  giveBack: db.prepare(
    'UPDATE tools SET borrowed_by = NULL, borrowed_at = NULL WHERE id = ? AND borrowed_by = ?',
  ),
  loan: db.prepare("INSERT INTO loans (tool_id, borrower, borrowed_at) VALUES (?, ?, datetime('now'))"),
  endLoan: db.prepare(
    "UPDATE loans SET returned_at = datetime('now') WHERE tool_id = ? AND borrower = ? AND returned_at IS NULL",
  ),
  history: db.prepare(
    'SELECT t.name AS tool, l.borrower, l.borrowed_at AS borrowedAt, l.returned_at AS returnedAt FROM loans l JOIN tools t ON t.id = l.tool_id ORDER BY l.id DESC LIMIT 100',
  ),
}

/** The caller, verified by the overlay (its certificate, end to end). */
const who = (req) => req.socket.remoteIdentity?.name

const app = express()
app.use(express.json({ limit: '16kb' }))
app.use((req, res, next) => (who(req) ? next() : res.status(403).json({ error: 'no overlay identity' })))

app.get('/', (req, res) => {
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`)
  const rows = q.list
    .all()
    .map(
      (t) =>
        `<tr><td>${esc(t.name)}</td><td>${esc(t.owner)}</td><td>${t.borrowedBy ? esc(t.borrowedBy) : ''}</td></tr>`,
    )
    .join('')
  res
    .type('html')
    .send(`<!doctype html><title>Tool Pool</title><h1>Tool Pool</h1><p>Hello ${esc(who(req))}</p>
<table><tr><th>Tool</th><th>Owner</th><th>Borrowed by</th></tr>${rows}</table>`)
})
app.get('/api/me', (req, res) => res.json(req.socket.remoteIdentity))
app.get('/api/tools', (_req, res) => res.json(q.list.all()))
app.get('/api/loans', (_req, res) => res.json(q.history.all()))
app.post('/api/tools', (req, res) => {
  const name = typeof req.body?.name === 'string' ? req.body.name.trim() : ''
  if (!name || name.length > 100) return res.status(400).json({ error: 'name: 1 to 100 characters' })
  const { lastInsertRowid } = q.add.run(name, who(req))
  res.status(201).json(q.get.get(lastInsertRowid))
})
app.post('/api/tools/:id/borrow', (req, res) => {
  const tool = q.get.get(Number(req.params.id))
  if (!tool) return res.status(404).json({ error: 'no such tool' })
  const ok = db.transaction(
    () => q.borrow.run(who(req), tool.id, who(req)).changes === 1 && q.loan.run(tool.id, who(req)),
  )()
  if (!ok)
    return res
      .status(409)
      .json({ error: tool.owner === who(req) ? 'it is your own tool' : `borrowed by ${tool.borrowedBy}` })
  res.json(q.get.get(tool.id))
})
app.post('/api/tools/:id/return', (req, res) => {
  const ok = db.transaction(
    () =>
      q.giveBack.run(Number(req.params.id), who(req)).changes === 1 &&
      q.endLoan.run(Number(req.params.id), who(req)),
  )()
  if (!ok) return res.status(409).json({ error: 'you have not borrowed it' })
  res.json(q.get.get(Number(req.params.id)))
})

const server = app.listen(18080, '127.0.0.1', (err) => {
  if (err) {
    console.error(`family tools: ${err.code}: ${err.message}`)
    process.exit(1)
  }
  console.log(JSON.stringify({ msg: 'family tools listening (overlay only)', address: server.address() }))
})
const stop = () => server.close(() => db.close())
process.on('SIGTERM', stop)
process.on('SIGINT', stop)

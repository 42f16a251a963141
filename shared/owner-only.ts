/**
 * Files that hold secrets (the catalog's pool URIs with their passwords, the embedded stores'
 * message bodies) are readable by their owner only.
 */
import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'

/**
 * Creates the SQLite database file `path` with mode 0600 (its directory, if missing, 0700) before
 * SQLite opens it: SQLite then creates the `-wal`, `-shm` and `-journal` files with the database
 * file's mode. A file (or companion) left by an older version is set to 0600 too. `:memory:` and
 * `''` (no file) are left alone.
 */
export function ownerOnlyDatabase(path: string): void {
  if (path === ':memory:' || path === '') return
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  closeSync(openSync(path, 'a', 0o600))
  for (const file of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) {
    try {
      chmodSync(file, 0o600)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
  }
}

/**
 * A minimal `Reflect` metadata polyfill (getMetadata / getOwnMetadata / defineMetadata /
 * hasMetadata / metadata), enough for tsyringe, which @peculiar/x509 loads and which refuses to
 * load without one. `reflect-metadata` is not a dependency of the project; this module is imported
 * before @peculiar/x509 and installs nothing when a polyfill is already present.
 */
type Key = unknown
type Target = object
type MetadataMap = Map<Key, unknown>

interface ReflectWithMetadata {
  getMetadata?: (key: Key, target: Target, prop?: PropertyKey) => unknown
  getOwnMetadata?: (key: Key, target: Target, prop?: PropertyKey) => unknown
  defineMetadata?: (key: Key, value: unknown, target: Target, prop?: PropertyKey) => void
  hasMetadata?: (key: Key, target: Target, prop?: PropertyKey) => boolean
  hasOwnMetadata?: (key: Key, target: Target, prop?: PropertyKey) => boolean
  metadata?: (key: Key, value: unknown) => (target: Target, prop?: PropertyKey) => void
}

const R = Reflect as unknown as ReflectWithMetadata

if (typeof R.getMetadata !== 'function') {
  const store = new WeakMap<Target, Map<PropertyKey | undefined, MetadataMap>>()
  const own = (target: Target, prop: PropertyKey | undefined, create: boolean): MetadataMap | undefined => {
    let byProp = store.get(target)
    if (!byProp) {
      if (!create) return undefined
      byProp = new Map()
      store.set(target, byProp)
    }
    let map = byProp.get(prop)
    if (!map) {
      if (!create) return undefined
      map = new Map()
      byProp.set(prop, map)
    }
    return map
  }
  const find = (key: Key, target: Target, prop?: PropertyKey): { found: boolean; value: unknown } => {
    let t: Target | null = target
    while (t !== null && t !== undefined) {
      const m = own(t, prop, false)
      if (m?.has(key)) return { found: true, value: m.get(key) }
      t = Object.getPrototypeOf(t) as Target | null
    }
    return { found: false, value: undefined }
  }
  R.defineMetadata = (key, value, target, prop) => {
    own(target, prop, true)!.set(key, value)
  }
  R.getOwnMetadata = (key, target, prop) => own(target, prop, false)?.get(key)
  R.hasOwnMetadata = (key, target, prop) => own(target, prop, false)?.has(key) ?? false
  R.getMetadata = (key, target, prop) => find(key, target, prop).value
  R.hasMetadata = (key, target, prop) => find(key, target, prop).found
  R.metadata = (key, value) => (target, prop) => {
    R.defineMetadata!(key, value, target, prop)
  }
}

export {}

/**
 * Field names that reach an object's prototype when request data is merged into an object by
 * assignment (Object.assign, a deep merge): `__proto__` replaces the target's prototype, and
 * `constructor` leads to `constructor.prototype`. No Shoal field is named like this.
 */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(["__proto__", "constructor"]);

/** An object literal or parsed JSON object (of any realm), or one without a prototype. */
function isPlainData(value: object): boolean {
  const prototype = Object.getPrototypeOf(value) as object | null;
  return prototype === null || Object.getPrototypeOf(prototype) === null;
}

/**
 * Whether the object's prototype was replaced by data: it is neither Object.prototype nor a
 * class's prototype (whose own `constructor` is a function pointing back at it, which JSON
 * cannot make). This is what is left of a `{"__proto__": {...}}` body once it has been merged
 * into the params by assignment.
 */
function hasDataPrototype(value: object): boolean {
  const prototype = Object.getPrototypeOf(value) as { constructor?: unknown } | null;
  if (prototype === null || Object.getPrototypeOf(prototype) === null) return false;
  const constructor = Object.hasOwn(prototype, "constructor") ? prototype.constructor : undefined;
  return !(typeof constructor === "function" && constructor.prototype === prototype);
}

function childPath(parent: string, key: string): string {
  return parent === "" ? key : `${parent}.${key}`;
}

/**
 * The path of the first forbidden key in JSON-like data (`__proto__`, `title.constructor`,
 * `variants[1].__proto__`), or undefined. Only plain objects and arrays are searched; instances
 * of classes (streams, buffers, dates) are not request data and are left alone. Iterative, so
 * that deeply nested input cannot exhaust the stack.
 */
export function findForbiddenKey(value: unknown): string | undefined {
  const pending: Array<[unknown, string]> = [[value, ""]];
  const seen = new Set<object>();
  while (pending.length > 0) {
    const [current, path] = pending.pop() as [unknown, string];
    if (current === null || typeof current !== "object" || seen.has(current)) continue;
    seen.add(current);
    if (Array.isArray(current)) {
      current.forEach((item, index) => pending.push([item, `${path}[${index}]`]));
    } else if (hasDataPrototype(current)) {
      return childPath(path, "__proto__");
    } else if (isPlainData(current)) {
      for (const [key, child] of Object.entries(current)) {
        if (FORBIDDEN_KEYS.has(key)) return childPath(path, key);
        pending.push([child, childPath(path, key)]);
      }
    }
  }
  return undefined;
}

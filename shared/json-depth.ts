/**
 * The one nesting limit for JSON values on a request's path. The proxy refuses request bodies
 * nested deeper (400, proxy/json.ts); every later stage that walks or encodes a value — the
 * RPC frame encoder (shared/rpc/frames.ts), the stores — accepts at least this much, so a body
 * the proxy accepted is never refused further down as a 500.
 */
export const MAX_JSON_DEPTH = 256

/**
 * Containers an RPC frame wraps around a client's value: the message map, `args` or `r`, a
 * result's list and item maps (a detailed queue listing: `{r: {items: [{metadata}]}}`). Headroom,
 * not an exact count.
 */
export const RPC_ENVELOPE_DEPTH = 16

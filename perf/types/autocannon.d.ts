// The slice of autocannon's programmatic API the bench uses (the package ships no types).
declare module 'autocannon' {
  interface AutocannonRequest {
    method?: string
    path?: string
    headers?: Record<string, string>
    body?: string | Buffer
    setupRequest?: (req: AutocannonRequest, context: Record<string, unknown>) => AutocannonRequest
  }
  interface AutocannonOptions {
    url: string
    connections?: number
    duration?: number
    method?: string
    headers?: Record<string, string>
    body?: string | Buffer
    requests?: AutocannonRequest[]
    timeout?: number
    overallRate?: number
  }
  interface Histo {
    average: number
    mean: number
    max: number
    p50: number
    p90: number
    p99: number
    total?: number
  }
  interface AutocannonResult {
    requests: Histo & { total: number }
    latency: Histo
    duration: number
    errors: number
    timeouts: number
    non2xx: number
    '2xx': number
  }
  function autocannon(opts: AutocannonOptions): Promise<AutocannonResult>
  export default autocannon
}

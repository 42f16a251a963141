// Mixed: producers and consumers at once, half the VUs each; with RATE, RATE msgs/s each way
// (the T4 scenario: RATE=10000 BATCH=10 CLAIM_LIMIT=10, p99 ≤ 10 ms for every request type).
//   k6 run -e BASE_URL=http://127.0.0.1:8888 -e RATE=10000 perf/k6/mixed.js
import { BATCH, CLAIM_LIMIT, VUS, claim, deleteClaimed, pick, post, scenario, thresholds } from './lib.js'

const half = Math.max(1, Math.floor(VUS / 2))

export const options = {
  scenarios: {
    producers: scenario('produce', half, BATCH),
    consumers: scenario('consume', Math.max(1, VUS - half), CLAIM_LIMIT),
  },
  thresholds,
}

export function produce() {
  post(pick())
}

export function consume() {
  const t = pick()
  deleteClaimed(t, claim(t))
}

// Producers: POST BATCH messages per request (BATCH=1 or 10), closed loop or at RATE msgs/s.
//   k6 run -e BASE_URL=http://127.0.0.1:8888 -e BATCH=10 perf/k6/producers.js
import { BATCH, VUS, pick, post, scenario, thresholds } from './lib.js'

export const options = {
  scenarios: { producers: scenario('produce', VUS, BATCH) },
  thresholds,
}

export function produce() {
  post(pick())
}

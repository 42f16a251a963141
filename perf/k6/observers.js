// Observers: list the first page of messages (limit 10, echo=true), closed loop or at RATE lists/s.
//   k6 run -e BASE_URL=http://127.0.0.1:8888 perf/k6/observers.js
import { VUS, list, pick, scenario } from './lib.js'

export const options = {
  scenarios: { observers: scenario('observe', VUS, 1) },
  thresholds: { 'http_req_duration{op:list}': ['p(99)<10'], checks: ['rate>0.99'] },
}

export function observe() {
  list(pick())
}

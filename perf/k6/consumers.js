// Consumers: claim CLAIM_LIMIT messages, then delete them (DELETE_MODE=bulk: one DELETE ?ids=;
// single: one DELETE <href>?claim_id= per message). Fill the queues first (producers.js).
//   k6 run -e BASE_URL=http://127.0.0.1:8888 -e DELETE_MODE=bulk perf/k6/consumers.js
import { CLAIM_LIMIT, VUS, claim, deleteClaimed, pick, scenario, thresholds } from './lib.js'

export const options = {
  scenarios: { consumers: scenario('consume', VUS, CLAIM_LIMIT) },
  thresholds,
}

export function consume() {
  const t = pick()
  deleteClaimed(t, claim(t))
}

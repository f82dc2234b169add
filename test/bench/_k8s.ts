/** `npx tsx test/bench/_k8s.ts`: only the Kubernetes rows of `npm run bench` (BENCH_K8S_ONLY picks among them). */
import { benchKubernetes } from "./kubernetes.bench";
import { machineConditions, printTable } from "./stats";
console.log(`machine: ${machineConditions()}`);
const rows = await benchKubernetes();
printTable(rows);
console.log(`machine after: ${machineConditions()}`);
process.exit(0);

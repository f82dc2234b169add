import { benchKubernetes } from "./kubernetes.bench.ts";
import { machineConditions, printTable } from "./stats.ts";
console.log(`machine: ${machineConditions()}`);
const rows = await benchKubernetes();
printTable(rows);
console.log(`machine after: ${machineConditions()}`);
process.exit(0);

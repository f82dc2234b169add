import { benchKubernetes } from "./kubernetes.bench";
import { machineConditions, printTable } from "./stats";
console.log(`machine: ${machineConditions()}`);
const rows = await benchKubernetes();
printTable(rows);
console.log(`machine after: ${machineConditions()}`);
process.exit(0);

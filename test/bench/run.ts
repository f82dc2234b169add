/** `npm run bench`: every benchmark, one table, with the machine's conditions. */
import { benchControlPlane } from "./control-plane.bench";
import { benchDispatch } from "./dispatch.bench";
import { benchImages } from "./images.bench";
import { benchKubernetes } from "./kubernetes.bench";
import { benchLocalFanout } from "./local-fanout.bench";
import { benchNatsMint } from "./nats-mint.bench";
import { benchPure } from "./pure.bench";
import { machineConditions, printTable } from "./stats";

console.log(`# MLflow Parallels benchmarks — ${new Date().toISOString()}`);
console.log(`machine: ${machineConditions()}\n`);
const rows = [
  ...benchPure(),
  ...(await benchNatsMint()),
  ...(await benchControlPlane()),
  ...(await benchDispatch()),
  ...(await benchLocalFanout()),
  ...(await benchKubernetes()),
  ...(await benchImages()),
];
process.exitCode = 0;
printTable(rows);
console.log(`\nmachine after: ${machineConditions()}`);

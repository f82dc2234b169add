/** `npx tsx test/bench/_images.ts`: only the image-build rows of `npm run bench`. */
import { benchImages } from "./images.bench";
import { machineConditions, printTable } from "./stats";
console.log(`machine: ${machineConditions()}`);
const rows = await benchImages();
printTable(rows);
console.log(`machine after: ${machineConditions()}`);
process.exit(0);

/** The commit and date every published benchmark result carries (one implementation: src/sim/stamp.ts). */
export { commitStamp, runStamp } from '../../src/sim/stamp.ts';

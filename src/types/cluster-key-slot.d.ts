/** The Redis Cluster slot of a key (CRC16 of its hash tag), as ioredis computes it. */
declare module 'cluster-key-slot' {
  export default function calculateSlot(key: string | Buffer): number;
}

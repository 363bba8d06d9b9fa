// KafkaJS against Floe: an idempotent producer, consume-transform-produce in transactions with
// group offsets, an aborted transaction, zombie fencing, and reads in both isolation levels.
// Prints one JSON line of what it saw; tests/e2e/test_kafkajs.py judges it.
//
//   node transactions.js <bootstrap host:port>
const { Kafka, logLevel, Partitioners } = require('kafkajs')

const kafka = new Kafka({ clientId: 'floe-e2e', brokers: [process.argv[2]], logLevel: logLevel.ERROR })
const INPUTS = 20

// Every record of `topic` as [partition, offset, value], read through a fresh group until
// `expect` arrived and one more second passed (so extra records would be seen too).
async function readAll (topic, readUncommitted, expect) {
  const c = kafka.consumer({ groupId: `read-${readUncommitted}-${Date.now()}`, readUncommitted })
  await c.connect()
  await c.subscribe({ topic, fromBeginning: true })
  const got = []
  await c.run({
    eachMessage: async ({ partition, message }) => {
      got.push([partition, Number(message.offset), message.value.toString()])
    }
  })
  const deadline = Date.now() + 60000
  while (got.length < expect && Date.now() < deadline) await sleep(100)
  await sleep(1000)
  await c.disconnect()
  return got.sort((a, b) => a[0] - b[0] || a[1] - b[1])
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function main () {
  const out = {}
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic: 'kjs-in', numPartitions: 2 }, { topic: 'kjs-out', numPartitions: 2 }]
  })
  const producerOpts = { createPartitioner: Partitioners.DefaultPartitioner }

  const plain = kafka.producer({ ...producerOpts, idempotent: true, maxInFlightRequests: 1 })
  await plain.connect()
  const acks = await plain.send({
    topic: 'kjs-in',
    messages: Array.from({ length: INPUTS }, (_, i) => ({ value: `in-${i}`, partition: i % 2 }))
  })
  out.idempotentAcks = acks.map((a) => [a.partition, Number(a.baseOffset)]).sort()
  await plain.disconnect()

  // Consume-transform-produce: each batch's outputs and the group's offsets in one transaction.
  const tp = kafka.producer({ ...producerOpts, transactionalId: 'kjs-t', maxInFlightRequests: 1, idempotent: true })
  await tp.connect()
  const consumer = kafka.consumer({ groupId: 'kjs-g', readUncommitted: false })
  await consumer.connect()
  await consumer.subscribe({ topic: 'kjs-in', fromBeginning: true })
  let transformed = 0
  await new Promise((resolve, reject) => {
    consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const txn = await tp.transaction()
        try {
          await txn.send({
            topic: 'kjs-out',
            messages: batch.messages.map((m) => ({ value: `out-${m.value}`, partition: batch.partition }))
          })
          const next = (BigInt(batch.messages[batch.messages.length - 1].offset) + 1n).toString()
          await txn.sendOffsets({
            consumerGroupId: 'kjs-g',
            topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: next }] }]
          })
          await txn.commit()
        } catch (e) {
          await txn.abort()
          reject(e)
          return
        }
        transformed += batch.messages.length
        if (transformed >= INPUTS) resolve()
      }
    }).catch(reject)
  })
  await consumer.disconnect()
  out.transformed = transformed

  // An aborted transaction.
  const aborting = await tp.transaction()
  await aborting.send({ topic: 'kjs-out', messages: [{ value: 'aborted', partition: 0 }] })
  await aborting.abort()

  // A zombie: a second producer with the same transactional id fences the first.
  const zombieTxn = await tp.transaction()
  await zombieTxn.send({ topic: 'kjs-out', messages: [{ value: 'zombie', partition: 1 }] })
  const successor = kafka.producer({ ...producerOpts, transactionalId: 'kjs-t', maxInFlightRequests: 1, idempotent: true })
  await successor.connect()
  // KafkaJS sends InitProducerId with a producer's first transaction, not at connect.
  const fresh = await successor.transaction()
  try {
    await zombieTxn.commit()
    out.zombieCommit = 'committed'
  } catch (e) {
    out.zombieCommit = e.type || e.name
  }
  await tp.disconnect()
  await fresh.send({ topic: 'kjs-out', messages: [{ value: 'successor', partition: 1 }] })
  await fresh.commit()
  await successor.disconnect()

  out.groupOffsets = (await admin.fetchOffsets({ groupId: 'kjs-g', topics: ['kjs-in'] }))[0]
    .partitions.map((p) => [p.partition, Number(p.offset)]).sort()
  out.committed = await readAll('kjs-out', false, INPUTS + 1)
  out.uncommitted = await readAll('kjs-out', true, INPUTS + 3)
  out.ends = (await admin.fetchTopicOffsets('kjs-out')).map((p) => [p.partition, Number(p.high)]).sort()
  await admin.disconnect()
  console.log(JSON.stringify(out))
}

main().then(() => process.exit(0), (e) => {
  console.error('FAILED', e)
  process.exit(1)
})

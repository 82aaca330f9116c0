// The Framer under any split of a stream (the client's receive path): random
// messages, random chunk boundaries, the same frames as one whole push.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeMessage, Framer, frameData, frameGroups, ServiceType } from '../src/protocol/index.js';

const options = { groupsMax: 1000, dataBytesMax: 200_000, bodyBytesMax: 300_000, rejectCarriesOldType: true };

const message = fc.record({
  reject: fc.boolean(),
  littleEndian: fc.boolean(),
  groups: fc.array(fc.stringMatching(/^[a-z#]{1,31}$/), { maxLength: 5 }),
  data: fc.uint8Array({ maxLength: 3000 }),
  messType: fc.integer({ min: 0, max: 0xffff }),
});

describe('Framer split anywhere', () => {
  it('yields the same frames for every chunking', () => {
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 4000 }), { minLength: 1, maxLength: 40 }), (messages, cuts) => {
        const stream = Buffer.concat(
          messages.map((m) =>
            encodeMessage(
              {
                type: m.reject ? ServiceType.REJECT_MESS : ServiceType.AGREED_MESS,
                sender: '#a#b',
                groups: m.groups,
                hintRaw: (m.messType << 8) >>> 0,
                data: m.data,
                oldType: m.reject ? ServiceType.SAFE_MESS : undefined,
              },
              m.littleEndian,
            ),
          ),
        );
        const framer = new Framer(options);
        const frames = [];
        let offset = 0;
        for (let i = 0; offset < stream.length; i++) {
          const size = cuts[i % cuts.length];
          // Each chunk is a fresh buffer, as a socket delivers it.
          const scratch = Buffer.from(stream.subarray(offset, offset + size));
          const got = framer.push(scratch);
          frames.push(...got.map((frame) => ({ groups: frameGroups(frame), data: Buffer.from(frameData(frame)), oldType: frame.oldType })));
          offset += size;
        }
        expect(framer.bufferedBytes).toBe(0);
        expect(frames).toEqual(
          messages.map((m) => ({ groups: m.groups, data: Buffer.from(m.data), oldType: m.reject ? ServiceType.SAFE_MESS : null })),
        );
      }),
      { numRuns: 300 },
    );
  });
});

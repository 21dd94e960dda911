import * as z from 'zod';
import { KNOWN_KEYWORDS } from './client/check';
import { EVENT_TYPES, eventTable } from './events';
import { ClientFrameSchema, ServerFrameSchema } from './frames';
import { methodTable, RPC_METHODS } from './methods';

/** A JSON Schema document (draft 2020-12). */
export type JsonSchema = Record<string, unknown>;

/** JSON Schemas for every frame, method and event, for clients written in other languages. */
export interface ProtocolJsonSchemas {
  clientFrame: JsonSchema;
  serverFrame: JsonSchema;
  methods: Record<string, { params: JsonSchema; result: JsonSchema }>;
  events: Record<string, JsonSchema>;
}

const toJson = (schema: z.ZodType): JsonSchema => z.toJSONSchema(schema, { io: 'input' }) as JsonSchema;

/** Generates the JSON Schemas from the zod schemas (the build writes them to `schema/`). */
export function protocolJsonSchemas(): ProtocolJsonSchemas {
  return {
    clientFrame: toJson(ClientFrameSchema),
    serverFrame: toJson(ServerFrameSchema),
    methods: Object.fromEntries(
      RPC_METHODS.map((m) => [m, { params: toJson(methodTable[m].params), result: toJson(methodTable[m].result) }]),
    ),
    events: Object.fromEntries(EVENT_TYPES.map((e) => [e, toJson(eventTable[e])])),
  };
}

/** What the zod-free client module checks frames against (`src/client/wire-schemas.json`). */
export interface WireSchemas {
  serverFrame: JsonSchema;
  clientFrame: JsonSchema;
  rpcResults: Record<string, JsonSchema>;
}

/** Drops the `$schema` annotations and refuses any keyword the client's checker does not know. */
function forChecker(schema: JsonSchema): JsonSchema {
  const walk = (node: unknown, where: string): unknown => {
    if (Array.isArray(node)) return node.map((n, i) => walk(n, `${where}/${i}`));
    if (node === null || typeof node !== 'object') return node;
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(node)) {
      if (key === '$schema') continue;
      if (!KNOWN_KEYWORDS.includes(key)) throw new Error(`the client's checker does not know ${where}/${key}`);
      // Under these keywords the keys are names (properties, definitions), not keywords; `const`/`enum` hold values.
      if (key === 'properties' || key === '$defs') {
        out[key] = Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, walk(v, `${where}/${k}`)]));
      } else if (key === 'const' || key === 'enum' || key === 'required') {
        out[key] = value;
      } else out[key] = walk(value, `${where}/${key}`);
    }
    return out;
  };
  return walk(schema, '#') as JsonSchema;
}

/**
 * The schemas a client checks what it receives against (server frames, RPC results) and what it
 * sends (client frames), generated from the zod schemas; `gen:docs` writes them to
 * `src/client/wire-schemas.json` and a test keeps that file in step.
 */
export function wireSchemas(): WireSchemas {
  const all = protocolJsonSchemas();
  return {
    serverFrame: forChecker(all.serverFrame),
    clientFrame: forChecker(all.clientFrame),
    rpcResults: Object.fromEntries(Object.entries(all.methods).map(([m, s]) => [m, forChecker(s.result)])),
  };
}

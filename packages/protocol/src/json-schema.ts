import * as z from 'zod';
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

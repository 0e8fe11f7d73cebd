/** The bounded server-sent-events parser now lives in @nullport/protocol (shared with the SDK). */
export { type SseEvent, SseParser, type SseParserOptions } from '@nullport/protocol'

/**
 * Message validation and composition: the valibot schema shared by the HTTP
 * layer and the library, the strict address grammar, and the MIME composer
 * that produces the octets and envelope the SMTP core sends.
 *
 * @module
 */

export {
  type Mailbox,
  normalizeAddress,
  normalizeDomain,
  parseAddressList,
  parseMailbox,
} from "./address.ts";
export {
  type AddressInput,
  type AddressListInput,
  AddressListSchema,
  AddressSchema,
} from "./address_schema.ts";
export type { Attachment, AttachmentInput } from "./attachment_schema.ts";
export { RESERVED_HEADER_PREFIXES, RESERVED_HEADERS } from "./headers_schema.ts";
export {
  type DsnOptions,
  type Message,
  type MessageInput,
  MessageSchema,
  parseMessage,
  type ParseMessageOptions,
} from "./schema.ts";
export {
  MessageValidationError,
  toValidationIssues,
  type ValidationIssue,
} from "./validation_issues.ts";
export {
  CHUNK_SIZE,
  type ComposedMessage,
  composeMessage,
  type ComposeOptions,
  type Envelope,
} from "./compose.ts";

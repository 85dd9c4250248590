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
  type Attachment,
  type AttachmentInput,
  type DsnOptions,
  type Message,
  type MessageInput,
  MessageSchema,
  MessageValidationError,
  parseMessage,
  type ParseMessageOptions,
  RESERVED_HEADER_PREFIXES,
  RESERVED_HEADERS,
  toValidationIssues,
  type ValidationIssue,
} from "./schema.ts";
export {
  CHUNK_SIZE,
  type ComposedMessage,
  composeMessage,
  type ComposeOptions,
  type Envelope,
} from "./compose.ts";

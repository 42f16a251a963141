/**
 * The native uWebSockets.js binding for the proxy's modules, loaded once at import
 * (shared/uws.ts chooses the build; `missive serve` checked that one loads before starting us).
 * `uWS.HttpRequest` and friends name the binding's types, as the package's own default export did.
 */
import type * as Uws from 'uWebSockets.js'
import { loadUws, type UwsModule } from '../shared/uws.js'

export const uWS: UwsModule = loadUws().uws

// A types-only namespace merged with the value above, so `uWS.HttpResponse` still names a type.
export declare namespace uWS {
  export type HttpRequest = Uws.HttpRequest
  export type HttpResponse = Uws.HttpResponse
  export type TemplatedApp = Uws.TemplatedApp
  export type us_listen_socket = Uws.us_listen_socket
}

// Same-origin calls to /api/v1 with the session cookie; state-changing calls carry the session's CSRF value.
export type Role = 'Viewer' | 'Operator' | 'Admin';
export interface SessionInfo { name: string; role: Role; csrf?: string; expires?: string }

export class ApiError extends Error {
  constructor(public status: number, message: string, public problem?: unknown) { super(message); }
}

let csrf: string | undefined;
let onUnauthorized: () => void = () => {};

export function setSession(session: SessionInfo | null): void { csrf = session?.csrf; }
export function whenUnauthorized(handler: () => void): void { onUnauthorized = handler; }
export const canAct = (role: Role | undefined): boolean => role === 'Operator' || role === 'Admin';

export async function api<T>(path: string, method = 'GET', body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['X-EdgeFleet-CSRF'] = csrf;
  const response = await fetch('/api/v1' + path, {
    method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401 && path !== '/session') onUnauthorized();
  if (!response.ok) {
    const problem = await response.json().catch(() => undefined) as { title?: string; detail?: string } | undefined;
    throw new ApiError(response.status, problem?.detail ?? problem?.title ?? `${response.status} ${response.statusText}`, problem);
  }
  return response.status === 204 ? (undefined as T) : await response.json() as T;
}

export const q = (params: Record<string, string | number | boolean | undefined | null>): string => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') s.set(k, String(v));
  const text = s.toString();
  return text ? '?' + text : '';
};

// Wire types (shared/EdgeFleet.Contracts/Api), the parts the dashboard reads.
export interface DeviceHealth { at?: string; fps?: number; latencyP95Ms?: number; errors?: number; cpuPercent?: number; memUsedBytes?: number; temperatureC?: number; driftSeverity?: string }
export interface DeviceInfo {
  id: string; tags: string[]; online: boolean; revoked: boolean; lastSeen?: string; enrolledAt: string; agentVersion?: string;
  model?: { name: string; version: string }; health?: DeviceHealth; messagesReceived: number; messagesLost: number;
  ota?: { state: string; model?: string; version?: string; mode?: string; reason?: string; at: string };
  desired?: { id?: string; model: string; version: string; mode: string; issuedAt: string; issuedBy?: string };
}
export interface TelemetryPoint {
  deviceId: string; ts: string; samples: number; fps?: number; latencyP50Ms?: number; latencyP95Ms?: number; latencyP99Ms?: number;
  cpuPercent?: number; memUsedBytes?: number; temperatureC?: number; errors?: number;
}
// A drift report's features as the agent sent them (ef.drift/1); numbers may arrive as "NaN"/"Infinity" strings.
export interface FeatureDriftInfo { name: string; kind?: string; n?: { baseline: number; current: number }; psi?: number | string; jsDistance?: number | string; pValueAdjusted?: number | string; severity?: string }
export interface DriftReportInfo { deviceId: string; ts: string; seq: number; model?: string; modelVersion?: string; severity: string; windowFrames: number; report?: { referenceId?: string; features?: FeatureDriftInfo[] } }
export interface Page<T> { items: T[]; next?: string }
export interface EventInfo { deviceId: string; ts: string; seq: number; type: string; level?: string; message?: string; data?: Record<string, string> }
export interface DeploymentInfo { model: string; version: string; from: string; to?: string; rolloutId?: string }
export interface ModelVersionMetadata { metrics?: Record<string, number>; parameters?: Record<string, string>; datasetVersion?: string; trainingRun?: string; parentVersion?: string }
export interface ModelVersionInfo {
  name: string; version: string; stage: string; task: string; description?: string; sha256: string; size: number; createdBy?: string; createdAt: string;
  hasDriftProfile: boolean; metadata?: ModelVersionMetadata;
}
export interface StageHistoryEntry { version: string; from: string; to: string; by?: string; at: string; reason?: string }
export interface ProfileFeatureInfo { name: string; kind?: string; count: number; effectiveCount?: number; mean?: number; std?: number; min?: number; max?: number; edges?: number[]; categories?: Record<string, number> }
export interface DriftProfileInfo { id: string; source?: string; createdAt?: string; features: ProfileFeatureInfo[] }
export interface ModelSummary { name: string; task?: string; description?: string; versionCount: number; latestVersion?: string; productionVersion?: string; stagingVersions: string[]; updatedAt: string; versions?: ModelVersionInfo[] }
export interface RolloutStageInfo { index: number; kind: string; percent?: number; count?: number; target: number; devices: number; bakeSeconds: number; approval: boolean; state: string; startedAt?: string; finishedAt?: string; counts: Record<string, number> }
export interface GateVerdictInfo { stage: number; gate: string; outcome: string; dryRun: boolean; look: number; at: string; summary?: string; evidence?: unknown }
export interface RolloutInfo {
  id: string; model: string; version: string; state: string; reason?: string; stage: number; stages: RolloutStageInfo[]; counts: Record<string, number>;
  deviceCount: number; verdicts: GateVerdictInfo[]; createdBy?: string; createdAt: string; updatedAt: string; finishedAt?: string;
}

{{/*
One MCP server container. dict: ctx, name (jira-read, ...), sidecar (bool).
As a sidecar it is an init container with restartPolicy Always, bound to 127.0.0.1; as a
Deployment (topology "services") it binds the pod IP and is reached through its Service.
*/}}
{{- define "goresolve.serverContainer" -}}
{{- $ctx := .ctx -}}{{- $v := $ctx.Values -}}{{- $name := .name -}}
{{- $def := get (include "goresolve.servers" $ctx | fromYaml) $name -}}
{{- $sv := get $v $def.key -}}
{{- $prefix := $def.prefix -}}
{{- $secretFiles := include "goresolve.serverSecretFiles" (dict "ctx" $ctx "name" $name) -}}
- name: {{ $name }}
  image: {{ include "goresolve.image" (get $v.images $def.key) }}
  imagePullPolicy: {{ $v.imagePullPolicy }}
  {{- if .sidecar }}
  restartPolicy: Always
  {{- end }}
  args: [--transport, http, --host, {{ ternary "127.0.0.1" "0.0.0.0" .sidecar | quote }}, --port, {{ $sv.port | quote }}, --policy-dir, /etc/goresolve/policies]
  env:
    # The root filesystem is read-only and UID 10001 has no home: point HOME at the state volume.
    - name: HOME
      value: /var/lib/goresolve
    - name: {{ $prefix }}STATE_DIR
      value: /var/lib/goresolve
    - name: {{ $prefix }}LOG_LEVEL
      value: INFO
    {{- if $secretFiles }}
    # Only this server's own credentials, one file per setting (pydantic-settings secrets dir).
    - name: GORESOLVE_SECRETS_DIR
      value: /var/run/secrets/goresolve
    {{- end }}
    {{- include "goresolve.serverAuthEnv" (dict "ctx" $ctx "name" $name "prefix" $prefix) | nindent 4 }}
    {{- if not .sidecar }}
    # Reached through its Service: DNS rebinding protection accepts the Service's names (any other Host is 421).
    {{- $svc := printf "%s-%s" (include "goresolve.fullname" $ctx) $name }}
    {{- $ns := $ctx.Release.Namespace }}
    - name: {{ $prefix }}ALLOWED_HOSTS
      value: {{ toJson (list (printf "%s:%v" $svc $sv.port) (printf "%s.%s:%v" $svc $ns $sv.port) (printf "%s.%s.svc:%v" $svc $ns $sv.port) (printf "%s.%s.svc.%s:%v" $svc $ns $v.clusterDomain $sv.port)) | quote }}
    {{- end }}
    {{- if eq $name "jira-read" }}
    - name: {{ $prefix }}BACKEND
      value: {{ $sv.backend | quote }}
    {{- if $sv.url }}
    - name: {{ $prefix }}URL
      value: {{ $sv.url | quote }}
    {{- end }}
    {{- if $sv.user }}
    - name: {{ $prefix }}USER
      value: {{ $sv.user | quote }}
    {{- end }}
    {{- else if eq $name "code-search" }}
    {{- if eq $v.index.storage "pvc" }}
    - name: {{ $prefix }}DB_DIR
      value: /var/lib/goresolve-index
    {{- else }}
    # LanceDB opens the store itself; nothing of the index is on a local volume.
    - name: {{ $prefix }}INDEX_URI
      value: {{ $v.index.objectStore.uri | quote }}
    {{- end }}
    {{- include "goresolve.embedderEnv" $ctx | nindent 4 }}
    {{- else if eq $name "go-test-runner" }}
    - name: {{ $prefix }}WORK_DIR
      value: /var/lib/goresolve-work
    - name: {{ $prefix }}GOPROXY
      value: {{ default "off" $sv.goproxy | quote }}
    # Both Go caches on the scratch volume (there is no user cache to seed from in a fresh pod).
    - name: {{ $prefix }}GOCACHE
      value: /var/lib/goresolve-work/gocache
    - name: {{ $prefix }}GOMODCACHE
      value: /var/lib/goresolve-work/gomodcache
    - name: {{ $prefix }}SEED_FROM_USER_CACHE
      value: "false"
    - name: {{ $prefix }}MAX_CONCURRENCY
      value: {{ $sv.maxConcurrency | quote }}
    - name: {{ $prefix }}MAX_DEPENDENTS
      value: {{ $sv.maxDependents | quote }}
    - name: {{ $prefix }}ALLOW_WEAK_SANDBOX
      value: {{ $sv.allowWeakSandbox | quote }}
    {{- else if eq $name "github-pr" }}
    - name: {{ $prefix }}BACKEND
      value: {{ $sv.backend | quote }}
    - name: {{ $prefix }}BASE_URL
      value: {{ $sv.baseUrl | quote }}
    - name: {{ $prefix }}BRANCH_PREFIX
      value: {{ $sv.branchPrefix | quote }}
    {{- end }}
  {{- if and (eq $name "code-search") (eq $v.index.storage "objectStore") $v.index.objectStore.existingSecret }}
  envFrom:
    - secretRef:
        name: {{ $v.index.objectStore.existingSecret }}
  {{- end }}
  {{- if not .sidecar }}
  {{- /* A sidecar listens on 127.0.0.1 only: declaring a pod port for it would advertise nothing reachable. */}}
  ports:
    - {name: mcp, containerPort: {{ $sv.port }}, protocol: TCP}
  {{- end }}
  # The kubelet probes the pod IP, and a sidecar listens on 127.0.0.1 only: probe from inside.
  startupProbe:
    exec:
      command: [python, -c, "import socket; socket.create_connection(('127.0.0.1', {{ $sv.port }}), 2).close()"]
    periodSeconds: 2
    timeoutSeconds: 3
    failureThreshold: 60
  livenessProbe:
    exec:
      command: [python, -c, "import socket; socket.create_connection(('127.0.0.1', {{ $sv.port }}), 2).close()"]
    periodSeconds: 20
    timeoutSeconds: 3
    failureThreshold: 3
  {{- if not .sidecar }}
  # Behind a Service: only a pod whose port answers receives requests.
  readinessProbe:
    tcpSocket: {port: mcp}
    periodSeconds: 5
    timeoutSeconds: 2
  {{- end }}
  resources:
    {{- toYaml $sv.resources | nindent 4 }}
  {{- include "goresolve.containerSecurityContext" $ctx | nindent 2 }}
  volumeMounts:
    - {name: policies, mountPath: /etc/goresolve/policies, readOnly: true}
    - {name: {{ $name }}-state, mountPath: /var/lib/goresolve}
    - {name: {{ $name }}-tmp, mountPath: /tmp}
    {{- if $secretFiles }}
    - {name: {{ $name }}-secrets, mountPath: /var/run/secrets/goresolve, readOnly: true}
    {{- end }}
    {{- if and (eq $v.auth.mode "projected") $v.auth.issuerCaConfigMap }}
    - {name: {{ $name }}-oidc-ca, mountPath: /etc/goresolve/oidc-ca, readOnly: true}
    {{- end }}
    {{- if eq $name "go-test-runner" }}
    - {name: go-test-runner-work, mountPath: /var/lib/goresolve-work}
    {{- end }}
    {{- if and (eq $name "code-search") (eq $v.index.storage "pvc") }}
    # The index is written by the indexer only; code-search reads it.
    - {name: index, mountPath: /var/lib/goresolve-index, readOnly: true}
    {{- end }}
{{- end -}}

{{/* "true" when the server gets credential files (dict: ctx, name): its own credential, the embeddings key
(code-search with embedder openai), or its token key (sharedKey); else empty. */}}
{{- define "goresolve.serverSecretFiles" -}}
{{- $v := .ctx.Values -}}
{{- $def := get (include "goresolve.servers" .ctx | fromYaml) .name -}}
{{- if or $def.secretSetting (eq $v.auth.mode "sharedKey") (and (eq .name "code-search") (eq $v.codeSearch.embedder "openai")) -}}
true
{{- end -}}
{{- end -}}

{{/* The volumes one server needs. dict: ctx, name. */}}
{{- define "goresolve.serverVolumes" -}}
{{- $ctx := .ctx -}}{{- $v := $ctx.Values -}}{{- $name := .name -}}
{{- $def := get (include "goresolve.servers" $ctx | fromYaml) $name -}}
{{- $sv := get $v $def.key -}}
- name: {{ $name }}-state
  emptyDir: {sizeLimit: 1Gi}
- name: {{ $name }}-tmp
  emptyDir: {sizeLimit: 1Gi}
{{- if include "goresolve.serverSecretFiles" (dict "ctx" $ctx "name" $name) }}
- name: {{ $name }}-secrets
  projected:
    defaultMode: 0440
    sources:
      {{- if and (eq $name "code-search") (eq $v.codeSearch.embedder "openai") }}
      {{- include "goresolve.embeddingsKeySource" $ctx | nindent 6 }}
      {{- end }}
      {{- if $def.secretSetting }}
      - secret:
          name: {{ include "goresolve.secretName" (list $ctx $sv.credentials $name) }}
          items:
            - {key: {{ $sv.credentials.existingSecretKey }}, path: {{ printf "%s%s" $def.prefix $def.secretSetting }}}
      {{- end }}
      {{- if eq $v.auth.mode "sharedKey" }}
      - secret:
          name: {{ include "goresolve.sharedKeySecret" $ctx }}
          items:
            # This server's own key only (the Secret holds one per server).
            - {key: {{ $name }}, path: {{ printf "%sTOKEN_KEY" $def.prefix }}}
      {{- end }}
{{- end }}
{{- if and (eq $v.auth.mode "projected") $v.auth.issuerCaConfigMap }}
# The CA of the in-cluster issuer (for its JWKS over HTTPS); a certificate, not a credential.
- name: {{ $name }}-oidc-ca
  configMap:
    name: {{ $v.auth.issuerCaConfigMap }}
    items:
      - {key: ca.crt, path: ca.crt}
{{- end }}
{{- if eq $name "go-test-runner" }}
- name: go-test-runner-work
  emptyDir: {sizeLimit: {{ $sv.scratchSizeLimit }}}
{{- end }}
{{- if and (eq $name "code-search") (eq $v.index.storage "pvc") }}
- name: index
  persistentVolumeClaim:
    claimName: {{ default (printf "%s-index" (include "goresolve.fullname" $ctx)) $v.index.pvc.existingClaim }}
    readOnly: true
{{- end }}
{{- end -}}

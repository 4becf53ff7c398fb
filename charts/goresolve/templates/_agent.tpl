{{/*
The agent pod spec: the agent container and, in topology "sidecars", the four servers as native
sidecars. Used by the per-ticket Job (job-template ConfigMap) and the optional agent Deployment.
dict: ctx, restartPolicy, args (the agent's command line), queue (bool), tokenTtl (seconds a minted token
lives, sharedKey mode only).
*/}}
{{- define "goresolve.agentPodSpec" -}}
{{- $ctx := .ctx -}}{{- $v := $ctx.Values -}}{{- $full := include "goresolve.fullname" $ctx -}}
{{- $sidecars := eq $v.topology "sidecars" -}}
{{- $servers := list "jira-read" "code-search" "go-test-runner" "github-pr" -}}
serviceAccountName: {{ $full }}-agent
# No API token: the agent's only tokens are the per-server audiences below.
automountServiceAccountToken: false
enableServiceLinks: false
restartPolicy: {{ .restartPolicy }}
{{- include "goresolve.podSecurityContext" $ctx | nindent 0 }}
{{- include "goresolve.podCommon" $ctx | nindent 0 }}
{{- $minted := eq $v.auth.mode "sharedKey" }}
{{- if or $sidecars $minted }}
initContainers:
  {{- if $minted }}
  # Fallback auth: this container alone holds the four servers' keys. It mints one token per server
  # (that server's audience only, living as long as a run may) into memory, and exits; the agent gets
  # the tokens, never a key.
  - name: tokens
    image: {{ include "goresolve.image" $v.images.agent }}
    imagePullPolicy: {{ $v.imagePullPolicy }}
    command: [sh, -c]
    args:
      - |
        set -eu
        for server in {{ join " " $servers }}; do
          goresolve token mint --subject "$GORESOLVE_TOKEN_SUBJECT" --server "$server" --ttl {{ .tokenTtl }} > "/var/run/secrets/goresolve/tokens/$server"
        done
    env:
      - name: GORESOLVE_DATA_DIR
        value: /var/lib/goresolve
      - name: GORESOLVE_SECRETS_DIR
        value: /var/run/secrets/goresolve/key
      - name: GORESOLVE_TOKEN_SUBJECT
        value: {{ include "goresolve.agentIdentity" $ctx | quote }}
    resources:
      requests: {cpu: 50m, memory: 64Mi}
      limits: {cpu: 500m, memory: 256Mi}
    {{- include "goresolve.containerSecurityContext" $ctx | nindent 4 }}
    volumeMounts:
      - {name: agent-state, mountPath: /var/lib/goresolve}
      - {name: agent-tmp, mountPath: /tmp}
      - {name: token-key, mountPath: /var/run/secrets/goresolve/key, readOnly: true}
      - {name: agent-tokens, mountPath: /var/run/secrets/goresolve/tokens}
  {{- end }}
  {{- if $sidecars }}
  {{- range $servers }}
  {{- include "goresolve.serverContainer" (dict "ctx" $ctx "name" . "sidecar" true) | nindent 2 }}
  {{- end }}
  {{- end }}
{{- end }}
containers:
  - name: agent
    image: {{ include "goresolve.image" $v.images.agent }}
    imagePullPolicy: {{ $v.imagePullPolicy }}
    args: {{ toJson .args }}
    env:
      - name: GORESOLVE_DATA_DIR
        value: /var/lib/goresolve
      - name: GORESOLVE_AGENT_POLICY_DIR
        value: /etc/goresolve/policies
      # The policy identity the servers see in this pod's tokens (their `sub`).
      - name: GORESOLVE_AGENT_IDENTITY
        value: {{ include "goresolve.agentIdentity" $ctx | quote }}
      - name: GORESOLVE_AGENT_API_KEY
        valueFrom:
          secretKeyRef:
            name: {{ include "goresolve.secretName" (list $ctx $v.agent.credentials "model") }}
            key: {{ $v.agent.credentials.existingSecretKey }}
      - name: GORESOLVE_AGENT_PROVIDER
        value: {{ $v.agent.provider | quote }}
      {{- with $v.agent.model }}
      - name: GORESOLVE_AGENT_MODEL
        value: {{ . | quote }}
      {{- end }}
      {{- with $v.agent.baseUrl }}
      - name: GORESOLVE_AGENT_BASE_URL
        value: {{ . | quote }}
      {{- end }}
      - name: GORESOLVE_AGENT_REDACT_CREDENTIALS
        value: {{ $v.agent.redactCredentials | quote }}
      - name: GORESOLVE_AGENT_ROUTE_MODELS
        value: {{ $v.agent.routeModels | quote }}
      # The alert webhook (spend alert, hand-off notifications) and when a hand-off is sent there.
      - name: GORESOLVE_AGENT_HANDOFF_NOTIFY
        value: {{ $v.agent.alerts.handoffNotify | quote }}
      {{- with $v.agent.alerts.existingSecret }}
      - name: GORESOLVE_AGENT_ALERT_FORMAT
        value: {{ $v.agent.alerts.format | quote }}
      - name: GORESOLVE_AGENT_ALERT_URL
        valueFrom:
          secretKeyRef: {name: {{ . | quote }}, key: {{ $v.agent.alerts.urlKey | quote }}}
      {{- if eq $v.agent.alerts.format "pagerduty" }}
      - name: GORESOLVE_AGENT_ALERT_ROUTING_KEY
        valueFrom:
          secretKeyRef: {name: {{ . | quote }}, key: {{ $v.agent.alerts.routingKeyKey | quote }}}
      {{- end }}
      {{- end }}
      - name: GORESOLVE_AGENT_MCP_TRANSPORT
        value: http
      {{- range $servers }}
      {{- $def := get (include "goresolve.servers" $ctx | fromYaml) . }}
      {{- $sv := get $v $def.key }}
      {{- $envName := . | upper | replace "-" "_" }}
      - name: GORESOLVE_AGENT_{{ $envName }}_URL
        value: {{ ternary (printf "http://127.0.0.1:%v/mcp" $sv.port) (printf "http://%s-%s:%v/mcp" $full . $sv.port) $sidecars | quote }}
      - name: GORESOLVE_AGENT_{{ $envName }}_TOKEN_FILE
        value: /var/run/secrets/goresolve/tokens/{{ . }}
      {{- end }}
      {{- if .queue }}
      # The long-running agent takes tickets from the queue itself (dispatch --mode local).
      {{- include "goresolve.queueEnv" $ctx | nindent 6 }}
      - name: GORESOLVE_QUEUE_JOB_TIMEOUT_S
        value: {{ add $v.dispatcher.wallClockSeconds $v.dispatcher.deadlineMarginSeconds 300 | quote }}
      - name: GORESOLVE_DISPATCH_WALL_CLOCK_S
        value: {{ $v.dispatcher.wallClockSeconds | quote }}
      - name: GORESOLVE_DISPATCH_JIRA_REPOS
        value: {{ toJson $v.dispatcher.jiraRepos | quote }}
      {{- with $v.dispatcher.defaultRepo }}
      - name: GORESOLVE_DISPATCH_DEFAULT_REPO
        value: {{ . | quote }}
      {{- end }}
      {{- end }}
      {{- with $v.agent.extraEnv }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    resources:
      {{- toYaml $v.agent.resources | nindent 6 }}
    {{- include "goresolve.containerSecurityContext" $ctx | nindent 4 }}
    volumeMounts:
      - {name: policies, mountPath: /etc/goresolve/policies, readOnly: true}
      - {name: agent-state, mountPath: /var/lib/goresolve}
      - {name: agent-tmp, mountPath: /tmp}
      - {name: agent-tokens, mountPath: /var/run/secrets/goresolve/tokens, readOnly: true}
volumes:
  {{- include "goresolve.policiesVolume" $ctx | nindent 2 }}
  - name: agent-state
    emptyDir: {sizeLimit: 1Gi}
  - name: agent-tmp
    emptyDir: {sizeLimit: 1Gi}
  {{- if $minted }}
  # Each server's key under that server's variable name (what `goresolve token mint --server` reads).
  - name: token-key
    projected:
      defaultMode: 0440
      sources:
        - secret:
            name: {{ include "goresolve.sharedKeySecret" $ctx }}
            items:
              {{- range $servers }}
              - {key: {{ . }}, path: {{ printf "GORESOLVE_%s_TOKEN_KEY" (. | upper | replace "-" "_") }}}
              {{- end }}
  - name: agent-tokens
    emptyDir: {medium: Memory, sizeLimit: 1Mi}
  {{- else }}
  # One ServiceAccount token per server, each with that server's audience only: a token stolen
  # from one server is refused by every other, and none of them is valid for the API server.
  - name: agent-tokens
    projected:
      defaultMode: 0440
      sources:
        {{- range $servers }}
        - serviceAccountToken:
            audience: {{ include "goresolve.tokenAudience" . }}
            expirationSeconds: {{ $v.auth.tokenExpirationSeconds }}
            path: {{ . }}
        {{- end }}
  {{- end }}
  {{- if $sidecars }}
  {{- range $servers }}
  {{- include "goresolve.serverVolumes" (dict "ctx" $ctx "name" .) | nindent 2 }}
  {{- end }}
  {{- end }}
{{- end -}}

{{- define "goresolve.agentLabels" -}}
{{ include "goresolve.selectorLabels" . }}
app.kubernetes.io/component: agent
{{- end -}}

{{/* The per-ticket Job's pod spec (YAML): the job-template ConfigMap's, and what the dispatcher's
admission policy pins the Jobs it creates to. */}}
{{- define "goresolve.jobPodSpec" -}}
{{- include "goresolve.agentPodSpec" (dict "ctx" . "restartPolicy" "Never" "args" (list "dispatch" "run") "queue" false "tokenTtl" (add .Values.dispatcher.wallClockSeconds .Values.dispatcher.deadlineMarginSeconds 300)) -}}
{{- end -}}

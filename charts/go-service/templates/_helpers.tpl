{{/*
Names and labels.
*/}}

{{/* The chart name, or nameOverride. Used as a dependency, .Chart.Name is the alias. */}}
{{- define "go-service.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name of every resource: fullnameOverride, or <release>-<name>. */}}
{{- define "go-service.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "go-service.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the pods; never change them after the first install. */}}
{{- define "go-service.selectorLabels" -}}
app.kubernetes.io/name: {{ include "go-service.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end }}

{{- define "go-service.labels" -}}
helm.sh/chart: {{ include "go-service.chart" . | quote }}
{{ include "go-service.selectorLabels" . }}
app.kubernetes.io/version: {{ include "go-service.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
{{- with include "go-service.commonLabels" . | fromJson }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Labels of the helm test pod: the release's labels without app.kubernetes.io/name, so the pod never
matches the selector of the Service, the PodDisruptionBudget or the HPA.
*/}}
{{- define "go-service.testLabels" -}}
helm.sh/chart: {{ include "go-service.chart" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/version: {{ include "go-service.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
app.kubernetes.io/component: test
{{- with include "go-service.commonLabels" . | fromJson }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
spec.replicas with an autoscaler (HPA or KEDA): "" to leave the field to the autoscaler, or the live scale
to render. Leaving it out is what keeps every deployer off the scale: a Helm 3 or Helm 4 upgrade or
rollback, `helm template` applied by kubectl client-side or server-side (Argo CD) never touch a field the
manifest does not have. It is rendered in the one case where leaving it out would reset it: the release
rendered replicas before (autoscaling was off, or an older chart) and the deployer would drop it:
  - Helm 3, and Helm 4 on a release applied client-side, patch a field the last manifest had and this one
    lacks to null, which the API server makes 1 (helm/helm#12650); so once rendered it stays rendered;
  - Helm 4 applies server-side: dropping a field only it owns removes it (again 1), dropping one another
    manager (the HPA through the scale subresource, kubectl scale) changed since is safe.
The live Deployment (lookup) says which case holds: the go-service/replicas annotation marks a Deployment
whose replicas the chart left out; its managedFields say whether the chart is applied server-side (an Apply
that owns the pod template) and whether anything else has set the scale since (an Update of replicas).
Without a cluster to read (`helm template`, a first install) it is left out: a new release starts one pod
and the autoscaler raises it to its minimum at its first sync.
*/}}
{{- define "go-service.autoscaledReplicas" -}}
{{- $live := lookup "apps/v1" "Deployment" .Release.Namespace (include "go-service.fullname" .) }}
{{- include "go-service.replicasFromLive" (dict "live" $live "min" (include "go-service.effectiveReplicas" .)) }}
{{- end }}

{{/* The decision of autoscaledReplicas for a live Deployment (.live, empty when there is none) and the
     autoscaler's minimum (.min). */}}
{{- define "go-service.replicasFromLive" -}}
{{- $live := .live | default dict }}
{{- $spec := get $live "spec" | default dict }}
{{- if hasKey $spec "replicas" }}
  {{- $left := eq (get (dig "metadata" "annotations" dict $live) "go-service/replicas") "autoscaler" }}
  {{- $applied := false }}
  {{- $scaled := false }}
  {{- range (dig "metadata" "managedFields" list $live) }}
    {{- $fields := dig "fieldsV1" "f:spec" dict . }}
    {{- if and (eq (get . "operation") "Apply") (hasKey $fields "f:template") }}
      {{- $applied = true }}
    {{- end }}
    {{- if and (ne (get . "operation") "Apply") (hasKey $fields "f:replicas") }}
      {{- $scaled = true }}
    {{- end }}
  {{- end }}
  {{- if not (or $left (and $applied $scaled)) }}
    {{- max (int64 .min) (int64 $spec.replicas) }}
  {{- end }}
{{- end }}
{{- end }}

{{- define "go-service.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "go-service.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image.
*/}}

{{- define "go-service.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion | toString }}
{{- end }}

{{/* repository:tag, repository@digest, or repository:tag@digest when both are set explicitly. */}}
{{- define "go-service.image" -}}
{{- $img := .Values.image }}
{{- $repo := include "go-service.repository" (dict "repository" $img.repository "global" .Values.global) }}
{{- if $img.digest }}
{{- if $img.tag }}
{{- printf "%s:%s@%s" $repo (toString $img.tag) $img.digest }}
{{- else }}
{{- printf "%s@%s" $repo $img.digest }}
{{- end }}
{{- else }}
{{- printf "%s:%s" $repo (include "go-service.imageTag" .) }}
{{- end }}
{{- end }}

{{/* A repository with global.imageRegistry in place of its registry (or before it, when it names none). A
     first component is a registry when it has a '.' or a ':' or is localhost, as for the container runtime. */}}
{{- define "go-service.repository" -}}
{{- $repo := .repository }}
{{- with (.global | default dict).imageRegistry }}
  {{- $parts := splitList "/" $repo }}
  {{- $first := first $parts }}
  {{- if and (gt (len $parts) 1) (or (contains "." $first) (contains ":" $first) (eq $first "localhost")) }}
    {{- $repo = rest $parts | join "/" }}
  {{- end }}
  {{- $repo = printf "%s/%s" . $repo }}
{{- end }}
{{- $repo }}
{{- end }}

{{/* The pull secrets: global.imagePullSecrets (names or {name: ...}), then imagePullSecrets, each once. */}}
{{- define "go-service.imagePullSecrets" -}}
{{- $names := list }}
{{- range concat ((.Values.global | default dict).imagePullSecrets | default list) (.Values.imagePullSecrets | default list) }}
  {{- $n := . }}
  {{- if kindIs "map" . }}
    {{- $n = .name }}
  {{- end }}
  {{- if not (has $n $names) }}
    {{- $names = append $names $n }}
  {{- end }}
{{- end }}
{{- toJson $names }}
{{- end }}

{{/* global.commonLabels with commonLabels over them, as JSON. */}}
{{- define "go-service.commonLabels" -}}
{{- toJson (merge (deepCopy (.Values.commonLabels | default dict)) ((.Values.global | default dict).commonLabels | default dict)) }}
{{- end }}

{{/*
Numbers. Values files give floats, --set gives ints: every number goes through these helpers.
*/}}

{{/* An integer, or a percentage string, rendered as YAML. */}}
{{- define "go-service.intOrPercent" -}}
{{- if kindIs "string" . }}{{ quote . }}{{ else }}{{ int64 . }}{{ end }}
{{- end }}

{{/* "true" when an integer-or-percentage value is zero (0, "0", "0%"). */}}
{{- define "go-service.isZero" -}}
{{- if kindIs "string" . }}{{ eq (trimSuffix "%" .) "0" }}{{ else }}{{ eq (int64 .) 0 }}{{ end }}
{{- end }}

{{/* The autoscaler that owns the Deployment's scale: "hpa", "keda" or "". */}}
{{- define "go-service.autoscaler" -}}
{{- if .Values.autoscaling.enabled }}hpa{{ else if (.Values.keda | default dict).enabled }}keda{{ end }}
{{- end }}

{{/* The value that sets the minimum replica count: replicaCount, or the autoscaler's minimum. */}}
{{- define "go-service.replicasValue" -}}
{{- $a := include "go-service.autoscaler" . }}
{{- if eq $a "hpa" }}autoscaling.minReplicas{{ else if eq $a "keda" }}keda.minReplicaCount{{ else }}replicaCount{{ end }}
{{- end }}

{{/* The replica count the cluster keeps at least: replicaCount, or the HPA minimum. */}}
{{- define "go-service.effectiveReplicas" -}}
{{- $a := include "go-service.autoscaler" . }}
{{- if eq $a "hpa" }}{{ int64 .Values.autoscaling.minReplicas }}{{ else if eq $a "keda" }}{{ int64 .Values.keda.minReplicaCount }}{{ else }}{{ int64 .Values.replicaCount }}{{ end }}
{{- end }}

{{/*
The shutdown budget: one place derives every timing.
*/}}

{{/* The preStop mode after resolving "auto" against the cluster version. */}}
{{- define "go-service.preStopMode" -}}
{{- $mode := .Values.shutdown.preStop.mode }}
{{- if eq $mode "auto" }}
{{- if semverCompare ">=1.30.0-0" .Capabilities.KubeVersion.Version }}sleep{{ else }}exec{{ end }}
{{- else }}
{{- $mode }}
{{- end }}
{{- end }}

{{/* Seconds the app waits after SIGTERM before it stops accepting: the delay when no hook covers it. */}}
{{- define "go-service.inAppDelaySeconds" -}}
{{- if eq (include "go-service.preStopMode" .) "none" }}{{ int64 .Values.shutdown.preStop.delaySeconds }}{{ else }}0{{ end }}
{{- end }}

{{/* The grace period: explicit, or delay + drain + buffer. */}}
{{- define "go-service.terminationGracePeriodSeconds" -}}
{{- $s := .Values.shutdown }}
{{- if kindIs "invalid" $s.terminationGracePeriodSeconds }}
{{- add $s.preStop.delaySeconds $s.drainTimeoutSeconds $s.bufferSeconds }}
{{- else }}
{{- int64 $s.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/* The preStop handler of the container, or nothing in mode "none". */}}
{{- define "go-service.preStop" -}}
{{- $mode := include "go-service.preStopMode" . }}
{{- $p := .Values.shutdown.preStop }}
{{- if eq $mode "sleep" }}
sleep:
  seconds: {{ int64 $p.delaySeconds }}
{{- else if eq $mode "exec" }}
exec:
  command:
    {{- range $p.sleepCommand }}
    - {{ quote . }}
    {{- end }}
    - {{ int64 $p.delaySeconds | quote }}
{{- else if eq $mode "command" }}
exec:
  command:
    {{- range $p.command }}
    - {{ quote . }}
    {{- end }}
{{- else if eq $mode "httpGet" }}
httpGet:
  path: {{ $p.httpGet.path | quote }}
  port: {{ include "go-service.portValue" $p.httpGet.port }}
  scheme: HTTP
{{- end }}
{{- end }}

{{/* The GO_SERVICE_* environment: the Go side of the shutdown contract. */}}
{{- define "go-service.contractEnv" -}}
{{- $s := .Values.shutdown }}
- name: GO_SERVICE_PRESTOP_MODE
  value: {{ include "go-service.preStopMode" . | quote }}
- name: GO_SERVICE_PRESTOP_DELAY
  value: {{ printf "%ds" (int64 $s.preStop.delaySeconds) | quote }}
- name: GO_SERVICE_SHUTDOWN_DELAY
  value: {{ printf "%ss" (include "go-service.inAppDelaySeconds" .) | quote }}
- name: GO_SERVICE_DRAIN_TIMEOUT
  value: {{ printf "%ds" (int64 $s.drainTimeoutSeconds) | quote }}
- name: GO_SERVICE_TERMINATION_GRACE_PERIOD
  value: {{ printf "%ss" (include "go-service.terminationGracePeriodSeconds" .) | quote }}
{{- with .Values.containerPorts.http }}
- name: GO_SERVICE_HTTP_PORT
  value: {{ int64 . | quote }}
{{- end }}
{{- if and .Values.probes.readiness.enabled (empty .Values.probes.readiness.custom) (ne (include "go-service.isGRPCProbe" .Values.probes.readiness) "true") }}
- name: GO_SERVICE_READINESS_PATH
  value: {{ .Values.probes.readiness.path | quote }}
{{- end }}
{{- if and .Values.probes.liveness.enabled (empty .Values.probes.liveness.custom) (ne (include "go-service.isGRPCProbe" .Values.probes.liveness) "true") }}
- name: GO_SERVICE_LIVENESS_PATH
  value: {{ .Values.probes.liveness.path | quote }}
{{- end }}
{{- if eq (include "go-service.preStopMode" .) "httpGet" }}
- name: GO_SERVICE_PRESTOP_PATH
  value: {{ .Values.shutdown.preStop.httpGet.path | quote }}
{{- end }}
{{- if (.Values.grpc | default dict).enabled }}
- name: GO_SERVICE_GRPC_PORT
  value: {{ int64 .Values.containerPorts.grpc | quote }}
- name: GO_SERVICE_GRPC_MAX_CONNECTION_AGE
  value: {{ printf "%ds" (int64 .Values.grpc.maxConnectionAgeSeconds) | quote }}
{{- end }}
{{- if not (empty (include "go-service.requestPathSidecar" . | fromJson)) }}
{{- /* Behind a proxy sidecar the app's clients are the proxy's connections: the app waits twice its
       default quiet period, so a proxy that closes its idle client connections once they go quiet is
       done before the app stops listening (else a request on one of them meets a closed listener: 502). */}}
- name: GO_SERVICE_KEEPALIVE_QUIET
  value: "1s"
{{- end }}
{{- end }}

{{/*
Probes and ports.
*/}}

{{/* A port reference (name or number) rendered as YAML. */}}
{{- define "go-service.portRef" -}}
{{- if kindIs "string" . }}{{ . }}{{ else }}{{ int64 . }}{{ end }}
{{- end }}

{{/* A port reference as it goes into a manifest: a name quoted, a number as a number. */}}
{{- define "go-service.portValue" -}}
{{- if kindIs "string" . }}{{ . | quote }}{{ else }}{{ int64 . }}{{ end }}
{{- end }}

{{/* A probe from its values block: the custom probe as given, an httpGet probe, or a grpc probe (whose
     port must be a number: callers resolve a name with go-service.containerProbe). */}}
{{- define "go-service.probe" -}}
{{- if .custom }}
{{- toYaml .custom }}
{{- else }}
{{- if eq (.type | default "http") "grpc" }}
grpc:
  port: {{ int64 .port }}
  service: {{ .grpcService | default "" | quote }}
{{- else }}
httpGet:
  path: {{ .path | quote }}
  port: {{ include "go-service.portValue" .port }}
  scheme: HTTP
{{- end }}
initialDelaySeconds: {{ int64 .initialDelaySeconds }}
periodSeconds: {{ int64 .periodSeconds }}
timeoutSeconds: {{ int64 .timeoutSeconds }}
successThreshold: {{ int64 .successThreshold }}
failureThreshold: {{ int64 .failureThreshold }}
{{- end }}
{{- end }}

{{/* A container's probe from its values block (.p): go-service.probe, with a grpc probe's port name
     looked up in .ports (containerPorts), since the kubelet's GRPCAction has no named port. A new name, so
     that go-service.probe keeps the signature an older go-service beside this one in a parent chart
     calls (a parent's subcharts share their named templates). */}}
{{- define "go-service.containerProbe" -}}
{{- if eq (include "go-service.isGRPCProbe" .p) "true" }}
{{- include "go-service.probe" (merge (dict "port" (include "go-service.portNumber" (dict "ref" .p.port "ports" .ports) | int64)) .p) }}
{{- else }}
{{- include "go-service.probe" .p }}
{{- end }}
{{- end }}

{{/* The number of a port reference (.ref: a name of .ports, or a number, also written as a string). */}}
{{- define "go-service.portNumber" -}}
{{- if and (kindIs "string" .ref) (hasKey .ports .ref) }}{{ int64 (index .ports .ref) }}{{ else }}{{ int64 .ref }}{{ end }}
{{- end }}

{{/* "true" when the probe block .p is built by the chart as a grpc probe (not custom). */}}
{{- define "go-service.isGRPCProbe" -}}
{{- and (empty .custom) (eq (.type | default "http") "grpc") }}
{{- end }}

{{/* "true" when the Service's main port reaches containerPorts.grpc: service.targetPort names it or is its
     number. */}}
{{- define "go-service.mainPortIsGRPC" -}}
{{- $c := .Values.containerPorts }}
{{- and (hasKey $c "grpc") (or (eq (toString .Values.service.targetPort) "grpc") (eq (include "go-service.portNumber" (dict "ref" .Values.service.targetPort "ports" $c)) (toString (int64 $c.grpc)))) }}
{{- end }}

{{/* The Service port (a number) that reaches containerPorts.grpc: the main port when service.targetPort is
     the gRPC port, else the port the Service exposes under the container port's own name and number. */}}
{{- define "go-service.grpcServicePort" -}}
{{- if eq (include "go-service.mainPortIsGRPC" .) "true" }}{{ int64 .Values.service.port }}{{ else }}{{ int64 .Values.containerPorts.grpc }}{{ end }}
{{- end }}

{{/* The name of the headless Service for client-side balancing (at most 63 characters). */}}
{{- define "go-service.headlessName" -}}
{{- printf "%s-headless" (include "go-service.fullname" . | trunc 54 | trimSuffix "-") }}
{{- end }}

{{/* The port a probe's handler connects to, "" for exec probes. */}}
{{- define "go-service.probePort" -}}
{{- if .custom }}
{{- range $kind := list "httpGet" "tcpSocket" "grpc" }}
{{- with index $.custom $kind }}{{ include "go-service.portRef" .port }}{{ end }}
{{- end }}
{{- else }}
{{- include "go-service.portRef" .port }}
{{- end }}
{{- end }}

{{/* "true" when a port reference (name or number) names one of containerPorts. */}}
{{- define "go-service.portExists" -}}
{{- $ref := .ref }}
{{- $found := false }}
{{- range $name, $port := .ports }}
{{- if or (eq $name (toString $ref)) (eq (toString (int64 $port)) (toString $ref)) }}{{ $found = true }}{{ end }}
{{- end }}
{{- $found }}
{{- end }}

{{/* The seconds a probe needs to fail (periodSeconds x failureThreshold), 0 for custom probes. */}}
{{- define "go-service.probeFailureWindow" -}}
{{- if .custom }}0{{ else }}{{ mul .periodSeconds .failureThreshold }}{{ end }}
{{- end }}

{{/* How many of the pods at the minimum scale the PodDisruptionBudget lets evictions take at once,
     rounded up as the eviction API rounds a percentage. */}}
{{- define "go-service.pdbAllows" -}}
{{- $pdb := .Values.podDisruptionBudget }}
{{- $n := int64 (include "go-service.effectiveReplicas" .) }}
{{- if kindIs "invalid" $pdb.minAvailable }}
  {{- include "go-service.scaled" (dict "value" $pdb.maxUnavailable "of" $n) }}
{{- else }}
  {{- max 0 (sub $n (int64 (include "go-service.scaled" (dict "value" $pdb.minAvailable "of" $n)))) }}
{{- end }}
{{- end }}

{{/* An integer-or-percentage .value as a count of .of, a percentage rounded up (as the eviction API
     and the disruption controller round both minAvailable and maxUnavailable). */}}
{{- define "go-service.scaled" -}}
{{- if kindIs "string" .value }}
  {{- div (add (mul (int64 .of) (atoi (trimSuffix "%" .value))) 99) 100 }}
{{- else }}
  {{- int64 .value }}
{{- end }}
{{- end }}

{{/* Warnings printed in NOTES: settings that render but give up some of the zero-downtime promise. */}}
{{- define "go-service.warnings" -}}
{{- $w := list }}
{{- $replicas := int64 (include "go-service.effectiveReplicas" .) }}
{{- if lt $replicas 2 }}
{{- $w = append $w (printf "Only %d replica: a node drain, an eviction or a crash takes the service down. Set %s to 2 or more." $replicas (include "go-service.replicasValue" .)) }}
{{- end }}
{{- if eq .Values.strategy.type "Recreate" }}
{{- $w = append $w "strategy.type is Recreate: every rollout stops all old pods before new ones start (downtime). Use RollingUpdate." }}
{{- end }}
{{- if not .Values.probes.readiness.enabled }}
{{- $w = append $w "probes.readiness.enabled is false: pods receive traffic before they can serve and while they shut down. Enable the readiness probe." }}
{{- end }}
{{- $r := .Values.probes.readiness }}
{{- $l := .Values.probes.liveness }}
{{- if and $r.enabled $l.enabled (empty $r.custom) (empty $l.custom) }}
{{- if lt (int64 (include "go-service.probeFailureWindow" $l)) (int64 (include "go-service.probeFailureWindow" $r)) }}
{{- $w = append $w "The liveness probe fails faster than the readiness probe: an overloaded pod is restarted before it is taken out of rotation. Make liveness more tolerant (periodSeconds x failureThreshold)." }}
{{- end }}
{{- end }}
{{- if and (not .Values.podDisruptionBudget.enabled) (ge $replicas 2) }}
{{- $w = append $w "podDisruptionBudget.enabled is false: a node drain may evict every pod at once. Enable the PodDisruptionBudget." }}
{{- end }}
{{- $pdb := .Values.podDisruptionBudget }}
{{- if and $pdb.enabled (ge $replicas 2) (ge (int64 (include "go-service.pdbAllows" .)) $replicas) }}
{{- $key := ternary "maxUnavailable" "minAvailable" (kindIs "invalid" $pdb.minAvailable) }}
{{- $w = append $w (printf "podDisruptionBudget.%s (%v) lets evictions take all %d pods (%s) at once: a node drain can stop every pod before a replacement is ready. Set podDisruptionBudget.maxUnavailable to 1." $key (index $pdb $key) $replicas (include "go-service.replicasValue" .)) }}
{{- end }}
{{- if eq (int64 .Values.shutdown.preStop.delaySeconds) 0 }}
{{- $w = append $w "shutdown.preStop.delaySeconds is 0: there is no shutdown delay anywhere (no preStop hook, none in the app), so the app stops accepting while kube-proxy and load balancers still send it new connections, and those fail. Set it to 5, or to what `go-service check --live` recommends for the cluster." }}
{{- end }}
{{- range $list := list "sidecars" "initContainers" }}
  {{- range $i, $c := index $.Values $list | default list }}
    {{- $csc := (kindIs "map" $c | ternary $c dict).securityContext | default dict }}
    {{- if and (kindIs "map" $csc) $csc.privileged }}
      {{- $w = append $w (printf "%s[%d] (%v) is privileged: it has every capability and the node's devices, so a compromise of it owns the node. Remove securityContext.privileged." $list $i $c.name) }}
    {{- end }}
    {{- if and (kindIs "map" $csc) (or (eq (toString (index $csc "runAsUser")) "0") (and (hasKey $csc "runAsNonRoot") (not $csc.runAsNonRoot))) }}
      {{- $w = append $w (printf "%s[%d] (%v) may run as root (runAsUser 0 or runAsNonRoot false): a compromise of it owns the pod's shared volumes. Run it as a non-root UID." $list $i $c.name) }}
    {{- end }}
  {{- end }}
{{- end }}
{{- $psc := .Values.podSecurityContext | default dict }}
{{- $sc := .Values.securityContext | default dict }}
{{- if or (empty $psc) (empty $sc) }}
{{- $w = append $w (printf "%s is empty: the pod gives up the restricted Pod Security defaults (non-root, no privilege escalation, capabilities dropped, RuntimeDefault seccomp) and a namespace that enforces restricted refuses it." (ternary "podSecurityContext" "securityContext" (empty $psc))) }}
{{- end }}
{{- if or (eq (toString (index $psc "runAsUser")) "0") (eq (toString (index $sc "runAsUser")) "0") (and (hasKey $psc "runAsNonRoot") (not $psc.runAsNonRoot)) (and (hasKey $sc "runAsNonRoot") (not $sc.runAsNonRoot)) }}
{{- $w = append $w "The container may run as root (runAsUser 0 or runAsNonRoot false): a compromised process owns the container's files. Run as a non-root UID." }}
{{- end }}
{{- if $sc.privileged }}
{{- $w = append $w "securityContext.privileged is true: the container has every capability and the node's devices. Remove it unless the workload is a node agent." }}
{{- end }}
{{- if and (hasKey $sc "allowPrivilegeEscalation") $sc.allowPrivilegeEscalation }}
{{- $w = append $w "securityContext.allowPrivilegeEscalation is true: a setuid binary can gain privileges. Set it to false." }}
{{- end }}
{{- with (include "go-service.capabilitiesAdded" $sc | fromJsonArray) }}
{{- $w = append $w (printf "securityContext.capabilities.add grants %s: each is a privilege beyond the restricted profile (only NET_BIND_SERVICE is allowed there)." (join ", " .)) }}
{{- end }}
{{- $vpa := .Values.vpa | default dict }}
{{- if and $vpa.enabled (ne $vpa.updateMode "Off") (eq $vpa.controlledValues "RequestsAndLimits") (has "memory" $vpa.controlledResources) (include "go-service.gomemlimit" .) }}
{{- $w = append $w (printf "vpa.updateMode %s with controlledValues RequestsAndLimits changes the memory limit of new pods, but GOMEMLIMIT (goRuntime.gomemlimit) is computed from resources.limits.memory at render and does not follow. Set vpa.controlledValues to RequestsOnly, or leave memory out of vpa.controlledResources." $vpa.updateMode) }}
{{- end }}
{{- if eq (toString .Values.service.internalTrafficPolicy) "Local" }}
{{- $w = append $w "service.internalTrafficPolicy is Local: a client pod on a node without a ready pod of this service gets no answer (the traffic is dropped, not sent elsewhere), and during a drain or rollout a node can have none. Remove it unless a pod runs on every node that calls the service." }}
{{- end }}
{{- $np := .Values.networkPolicy | default dict }}
{{- if and $np.enabled (not (kindIs "invalid" $np.egress)) (not ($np.dns | default dict).enabled) }}
{{- $w = append $w "networkPolicy.egress restricts egress and networkPolicy.dns.enabled is false: name lookups fail unless an egress rule allows the cluster DNS. Enable networkPolicy.dns, or allow port 53 in networkPolicy.egress." }}
{{- end }}
{{- if and .Values.goRuntime.gomemlimit (not (include "go-service.gomemlimit" .)) }}
{{- $w = append $w "goRuntime.gomemlimit is true but resources.limits.memory is not set, so GOMEMLIMIT is not set: the Go GC does not know the container's budget, and the kernel OOM-kills it instead. Set resources.limits.memory, or goRuntime.gomemlimit to false." }}
{{- end }}
{{- if and .Values.topologySpread.enabled (not .Values.topologySpreadConstraints) }}
{{- range .Values.topologySpread.topologyKeys }}
  {{- $k := include "go-service.spreadKey" (dict "key" . "defaults" $.Values.topologySpread) | fromJson }}
  {{- if and (eq $k.whenUnsatisfiable "DoNotSchedule") (ne $k.key "kubernetes.io/hostname") }}
    {{- $w = append $w (printf "topologySpread: %s with DoNotSchedule: the scheduler skips nodes without that label, so on a cluster whose nodes lack it every new pod stays Pending and rollouts stall. Use ScheduleAnyway for this key ({key: %s, whenUnsatisfiable: ScheduleAnyway}) unless every node has it." $k.key $k.key) }}
  {{- end }}
{{- end }}
{{- end }}
{{- with include "go-service.requestPathSidecar" . | fromJson }}
{{- $sc := index $.Values.sidecars (int .index) }}
{{- if and (ne (include "go-service.nativeSidecars" $) "true") (not (and $sc.lifecycle $sc.lifecycle.preStop)) }}
{{- $fix := ternary "Set sidecarMode to auto or native: a native sidecar stops only after the app has exited." (printf "This cluster (%s) has no native sidecars (Kubernetes 1.29): give sidecars[%d] a lifecycle.preStop that lasts shutdown.preStop.delaySeconds + shutdown.drainTimeoutSeconds (%ds), and make it finish its requests on SIGTERM." $.Capabilities.KubeVersion.Version (int .index) (add $.Values.shutdown.preStop.delaySeconds $.Values.shutdown.drainTimeoutSeconds)) (semverCompare ">=1.29.0-0" $.Capabilities.KubeVersion.Version) }}
{{- $w = append $w (printf "sidecars[%d] (%s) is in the request path (service.targetPort) as a regular container with no preStop hook: it gets SIGTERM as soon as a pod starts terminating, while its endpoint still takes traffic, and requests are dropped. %s" (int .index) .name $fix) }}
{{- end }}
{{- end }}
{{- $g := .Values.grpc | default dict }}
{{- if and $g.enabled (eq (int64 $g.maxConnectionAgeSeconds) 0) }}
{{- if dig "headless" "enabled" false $g }}
{{- $w = append $w (printf "grpc.maxConnectionAgeSeconds is 0 with grpc.headless.enabled: clients that balance over %s resolve its pods only when a connection fails or ends, and the server never ends one, so pods added by a rollout or a scale-up get no calls from clients already connected. Set grpc.maxConnectionAgeSeconds (e.g. 60)." (include "go-service.headlessName" .)) }}
{{- else }}
{{- $w = append $w "grpc.maxConnectionAgeSeconds is 0: a gRPC client keeps one connection to the pod it reached first (kube-proxy balances connections, not calls), so after a rollout the calls stay on the pods that came up first and new pods get none. Set grpc.maxConnectionAgeSeconds (e.g. 60)." }}
{{- end }}
{{- end }}
{{- if and $g.enabled .Values.tests.enabled (eq (include "go-service.mainPortIsGRPC" .) "true") (has "$(TEST_URL)" .Values.tests.command) }}
{{- $w = append $w "service.targetPort is the gRPC port, and tests.command requests $(TEST_URL) over HTTP/1.1, so `helm test` fails. Set tests.command to a gRPC health client on $(TEST_GRPC_ADDR) (e.g. grpc-health-probe -addr=$(TEST_GRPC_ADDR) in tests.image), or tests.enabled to false." }}
{{- end }}
{{- if eq (include "go-service.preStopMode" .) "exec" }}
{{- $w = append $w (printf "The preStop hook runs %q in the container (mode exec on Kubernetes %s): the image must contain that binary, or the pod gets no delay before SIGTERM." (first .Values.shutdown.preStop.sleepCommand) .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- toJson $w }}
{{- end }}

{{/* The container environment: the shutdown contract, the Go runtime limits, then the user's env. */}}
{{- define "go-service.env" -}}
{{- if .Values.shutdown.env }}
{{ include "go-service.contractEnv" . }}
{{- end }}
{{- with include "go-service.gomemlimit" . }}
- name: GOMEMLIMIT
  value: {{ . | quote }}
{{- end }}
{{- if .Values.goRuntime.gomaxprocs }}
- name: GOMAXPROCS
  valueFrom:
    resourceFieldRef:
      containerName: app
      resource: limits.cpu
{{- end }}
{{- if (.Values.otel | default dict).enabled }}
{{ include "go-service.otelEnv" . }}
{{- end }}
{{- with include "go-service.tplEnv" . | fromJsonArray }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* GOMEMLIMIT in bytes: goRuntime.gomemlimitRatio of the memory limit; "" when off or without a limit. */}}
{{- define "go-service.gomemlimit" -}}
{{- $limits := (.Values.resources | default dict).limits | default dict }}
{{- if and .Values.goRuntime.gomemlimit (hasKey $limits "memory") }}
  {{- $bytes := include "go-service.quantityValue" $limits.memory | float64 }}
  {{- printf "%.0f" (floor (mulf $bytes (.Values.goRuntime.gomemlimitRatio | default 0.9))) }}
{{- end }}
{{- end }}

{{/* The OpenTelemetry resource environment. The downward API variables come first: $(VAR) only expands
     variables defined before it. */}}
{{- define "go-service.otelEnv" -}}
{{- $o := .Values.otel }}
{{- $attrs := list "k8s.pod.name=$(K8S_POD_NAME)" "k8s.namespace.name=$(K8S_NAMESPACE_NAME)" "k8s.node.name=$(K8S_NODE_NAME)" (printf "k8s.deployment.name=%s" (include "go-service.fullname" .)) "k8s.container.name=app" (printf "service.version=%s" (include "go-service.imageTag" .)) }}
{{- range $k, $v := $o.resourceAttributes }}
  {{- /* Values are percent-encoded as the OpenTelemetry environment specification says: a ',' or '=' in
         a value neither splits the list nor its pair, and no '$(' reaches the kubelet's expansion. Every
         byte outside A-Z a-z 0-9 - . _ ~ is encoded (urlquery writes a space as '+', which is %20 here). */}}
  {{- $attrs = append $attrs (printf "%s=%s" $k (urlquery (toString $v) | replace "+" "%20")) }}
{{- end -}}
- name: K8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: K8S_NAMESPACE_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: K8S_NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
- name: OTEL_SERVICE_NAME
  value: {{ $o.serviceName | default (include "go-service.name" .) | quote }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attrs | quote }}
{{- end }}

{{/* The variables the chart sets itself (a user env entry with one of these names is refused). */}}
{{- define "go-service.chartEnvNames" -}}
{{- $n := list }}
{{- if .Values.shutdown.env }}
  {{- $n = concat $n (list "GO_SERVICE_PRESTOP_MODE" "GO_SERVICE_PRESTOP_DELAY" "GO_SERVICE_SHUTDOWN_DELAY" "GO_SERVICE_DRAIN_TIMEOUT" "GO_SERVICE_TERMINATION_GRACE_PERIOD" "GO_SERVICE_HTTP_PORT" "GO_SERVICE_READINESS_PATH" "GO_SERVICE_LIVENESS_PATH" "GO_SERVICE_PRESTOP_PATH") }}
  {{- if (.Values.grpc | default dict).enabled }}
    {{- $n = concat $n (list "GO_SERVICE_GRPC_PORT" "GO_SERVICE_GRPC_MAX_CONNECTION_AGE") }}
  {{- end }}
  {{- if not (empty (include "go-service.requestPathSidecar" . | fromJson)) }}
    {{- $n = append $n "GO_SERVICE_KEEPALIVE_QUIET" }}
  {{- end }}
{{- end }}
{{- if include "go-service.gomemlimit" . }}
  {{- $n = append $n "GOMEMLIMIT" }}
{{- end }}
{{- if .Values.goRuntime.gomaxprocs }}
  {{- $n = append $n "GOMAXPROCS" }}
{{- end }}
{{- if (.Values.otel | default dict).enabled }}
  {{- $n = concat $n (list "K8S_POD_NAME" "K8S_NAMESPACE_NAME" "K8S_NODE_NAME" "OTEL_SERVICE_NAME" "OTEL_RESOURCE_ATTRIBUTES") }}
{{- end }}
{{- toJson $n }}
{{- end }}

{{/*
Scheduling.
*/}}

{{/* The user's constraints (with the selector filled in) or one per topology key. */}}
{{- define "go-service.topologySpreadConstraints" -}}
{{- $sel := fromYaml (include "go-service.selectorLabels" .) }}
{{- $out := list }}
{{- if .Values.topologySpreadConstraints }}
{{- range .Values.topologySpreadConstraints }}
{{- $c := deepCopy . }}
{{- if not (hasKey $c "labelSelector") }}
{{- $_ := set $c "labelSelector" (dict "matchLabels" $sel) }}
{{- end }}
{{- $out = append $out $c }}
{{- end }}
{{- else if .Values.topologySpread.enabled }}
{{- range .Values.topologySpread.topologyKeys }}
  {{- $k := include "go-service.spreadKey" (dict "key" . "defaults" $.Values.topologySpread) | fromJson }}
  {{- $out = append $out (dict "maxSkew" (int64 $k.maxSkew) "topologyKey" $k.key "whenUnsatisfiable" $k.whenUnsatisfiable "labelSelector" (dict "matchLabels" $sel) "matchLabelKeys" (list "pod-template-hash")) }}
{{- end }}
{{- end }}
{{- with $out }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* One topologySpread.topologyKeys entry (a label, or an object with its own settings) with the block's
     defaults filled in, as JSON {key, whenUnsatisfiable, maxSkew}. */}}
{{- define "go-service.spreadKey" -}}
{{- $d := .defaults }}
{{- if kindIs "map" .key }}
  {{- toJson (dict "key" (toString .key.key) "whenUnsatisfiable" (.key.whenUnsatisfiable | default $d.whenUnsatisfiable) "maxSkew" (ternary .key.maxSkew $d.maxSkew (hasKey .key "maxSkew"))) }}
{{- else }}
  {{- toJson (dict "key" (toString .key) "whenUnsatisfiable" $d.whenUnsatisfiable "maxSkew" $d.maxSkew) }}
{{- end }}
{{- end }}

{{/* The containerPorts the Service exposes beside its main port, by name, as a JSON list: every other
     container port (metrics, admin...), but not the app's http port when a sidecar is in the request path
     (traffic would bypass it). */}}
{{- define "go-service.serviceContainerPorts" -}}
{{- $main := include "go-service.servicePortName" . }}
{{- $viaSidecar := not (empty (include "go-service.requestPathSidecar" . | fromJson)) }}
{{- $out := list }}
{{- range $name, $_ := .Values.containerPorts }}
  {{- if and (ne $name $main) (not (and $viaSidecar (eq $name "http"))) }}
    {{- $out = append $out $name }}
  {{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* The name of the Service port that carries the main traffic. */}}
{{- define "go-service.servicePortName" -}}
{{- if kindIs "string" .Values.service.targetPort }}{{ .Values.service.targetPort }}{{ else }}http{{ end }}
{{- end }}

{{/* How messages name this chart's values: "go-service", or the alias when used as a dependency. */}}
{{- define "go-service.valuesPath" -}}
{{- if eq .Chart.Name "go-service" }}go-service{{ else }}go-service (values under {{ .Chart.Name }}:){{ end }}
{{- end }}

{{/* The capabilities a security context adds, as a JSON list (none when the block is not a map). */}}
{{- define "go-service.capabilitiesAdded" -}}
{{- $caps := list }}
{{- if and (kindIs "map" .) (kindIs "map" .capabilities) (kindIs "slice" .capabilities.add) }}
  {{- $caps = .capabilities.add }}
{{- end }}
{{- toJson $caps }}
{{- end }}

{{/*
The checksum of the config data alone (not of the rendered ConfigMap, whose labels carry the chart
version): a new value restarts the pods, a chart upgrade that changes no data does not. Each value is
hashed as the ConfigMap holds it (a string); toJson sorts the keys.
*/}}
{{- define "go-service.configChecksum" -}}
{{- $data := dict }}
{{- range $k, $v := .Values.config.data }}
  {{- $_ := set $data $k (include "go-service.tpl" (dict "value" (toString $v) "context" $ "path" (printf "config.data.%s" $k))) }}
{{- end }}
{{- toJson $data | sha256sum }}
{{- end }}

{{/*
Sidecars and init containers.
*/}}

{{/* "true" when the sidecars run as native sidecars (init containers with restartPolicy Always). */}}
{{- define "go-service.nativeSidecars" -}}
{{- $mode := .Values.sidecarMode | default "auto" }}
{{- if eq $mode "auto" }}
  {{- semverCompare ">=1.29.0-0" .Capabilities.KubeVersion.Version }}
{{- else }}
  {{- eq $mode "native" }}
{{- end }}
{{- end }}

{{/* User containers (.containers) as YAML list items: each with the chart's container securityContext
     (.securityContext) when it has none, and restartPolicy Always when .native. */}}
{{- define "go-service.userContainers" -}}
{{- $out := list }}
{{- range .containers }}
  {{- $c := deepCopy . }}
  {{- if not (hasKey $c "securityContext") }}
    {{- $_ := set $c "securityContext" $.securityContext }}
  {{- end }}
  {{- if $.native }}
    {{- $_ := set $c "restartPolicy" "Always" }}
  {{- end }}
  {{- $out = append $out $c }}
{{- end }}
{{- with $out }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/* The sidecar whose port service.targetPort names, as {"index": i, "name": n, "port": p}, or {}: the
     container in the request path when it is not the app. */}}
{{- define "go-service.requestPathSidecar" -}}
{{- $ref := toString .Values.service.targetPort }}
{{- $found := dict }}
{{- if ne (include "go-service.portExists" (dict "ref" .Values.service.targetPort "ports" .Values.containerPorts)) "true" }}
  {{- range $i, $c := .Values.sidecars }}
    {{- range $p := $c.ports | default list }}
      {{- if and (not $found) (or (eq (toString ($p.name | default "")) $ref) (eq (toString (int64 $p.containerPort)) $ref)) }}
        {{- $found = dict "index" $i "name" $c.name "port" (int64 $p.containerPort) }}
      {{- end }}
    {{- end }}
  {{- end }}
{{- end }}
{{- toJson $found }}
{{- end }}

{{/*
Templates in values (tpl): annotations, env values, config data and ingress hosts may use the release's
values and names ({{ .Release.Name }}). A string without "{{" is used as is.
*/}}

{{/* .value rendered with tpl in .context when it is a string holding a template; anything else as is.
     .path (required) names the value (podAnnotations.owner): the template runs as a named template of that name,
     so that Helm's error for a template that fails names the value, then the template's own error
     (`executing "podAnnotations.owner" at <.Values.nope.x>: nil pointer ...`). A value that defines
     templates itself runs as it is. */}}
{{- define "go-service.tpl" -}}
{{- if and (kindIs "string" .value) (contains "{{" .value) }}
  {{- if regexMatch "\\{\\{-?\\s*(define|block)\\b" .value }}
    {{- tpl .value .context }}
  {{- else }}
    {{- tpl (printf "{{ define %q }}%s{{ end }}{{ include %q . }}" .path .value .path) .context }}
  {{- end }}
{{- else }}
  {{- .value }}
{{- end }}
{{- end }}

{{/* A map with each string value rendered with tpl, as JSON (nothing for an empty map); .path names the map. */}}
{{- define "go-service.tplMap" -}}
{{- $out := dict }}
{{- range $k, $v := .value | default dict }}
  {{- $_ := set $out $k (include "go-service.tpl" (dict "value" $v "context" $.context "path" (printf "%s.%s" $.path $k))) }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* The user's env with each value rendered with tpl, as JSON. */}}
{{- define "go-service.tplEnv" -}}
{{- $out := list }}
{{- range $i, $env := .Values.env | default list }}
  {{- $e := deepCopy $env }}
  {{- if hasKey $e "value" }}
    {{- $_ := set $e "value" (include "go-service.tpl" (dict "value" $e.value "context" $ "path" (printf "env[%d].value" $i))) }}
  {{- end }}
  {{- $out = append $out $e }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* The checksum of the chart's Secret data. */}}
{{- define "go-service.secretChecksum" -}}
{{- toJson .Values.secret.data | sha256sum }}
{{- end }}

{{/* The checksum of the existing Secrets' data, read from the cluster (nothing without cluster access). */}}
{{- define "go-service.existingSecretsChecksum" -}}
{{- $data := dict }}
{{- range .Values.existingSecrets.names }}
  {{- $s := lookup "v1" "Secret" $.Release.Namespace . }}
  {{- $_ := set $data . (($s | default dict).data | default dict) }}
{{- end }}
{{- toJson $data | sha256sum }}
{{- end }}

{{/* The pod annotations: the checksums of what the pods read, then podAnnotations (tpl), as JSON. */}}
{{- define "go-service.podAnnotations" -}}
{{- $a := dict }}
{{- if .Values.config.data }}
  {{- $_ := set $a "checksum/config" (include "go-service.configChecksum" .) }}
{{- end }}
{{- if (.Values.secret | default dict).data }}
  {{- $_ := set $a "checksum/secret" (include "go-service.secretChecksum" .) }}
{{- end }}
{{- $es := .Values.existingSecrets | default dict }}
{{- if and $es.names $es.checksum }}
  {{- $_ := set $a "checksum/existing-secrets" (include "go-service.existingSecretsChecksum" .) }}
{{- end }}
{{- toJson (merge $a (include "go-service.tplMap" (dict "value" .Values.podAnnotations "context" $ "path" "podAnnotations") | fromJson)) }}
{{- end }}

{{/* Route rules (.rules) with the Service as the backend of every rule that names none (.backend), as JSON. */}}
{{- define "go-service.routeRules" -}}
{{- $out := list }}
{{- range .rules }}
  {{- $r := deepCopy . }}
  {{- if not (hasKey $r "backendRefs") }}
    {{- $_ := set $r "backendRefs" $.backend }}
  {{- end }}
  {{- $out = append $out $r }}
{{- end }}
{{- toJson $out }}
{{- end }}

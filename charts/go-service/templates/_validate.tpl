{{/*
The chart's cross-value checks, one named define per area, each returning its messages as a JSON list
(bitnami's validateValues.* pattern). Each message names the value at fault and says what to change.
All problems are reported together, and nothing is rendered while one remains. values.schema.json already
rejects unknown keys, wrong types, out-of-range numbers and malformed names.
*/}}
{{- define "go-service.validate" -}}
{{- $errs := list }}
{{- range $area := list "strings" "names" "rollout" "shutdown" "ports" "resources" "volumes" "scheduling" "security" "disruption" "exposure" "containers" "templates" "scaling" }}
{{- $errs = concat $errs (include (printf "go-service.validate.%s" $area) $ | fromJsonArray) }}
{{- end }}
{{- if $errs }}
{{- $msg := printf "\n\n%s: invalid values:\n  - %s\n" (include "go-service.valuesPath" .) (join "\n  - " $errs) }}
{{- fail $msg }}
{{- /* Only reached under `helm lint`, whose lint mode logs `fail` as INFO and goes on. Including a template
     named by the message is an error lint reports, so lint fails too, with the message in it. */}}
{{- include (printf "go-service refuses these values:%s" $msg) . }}
{{- end }}
{{- end }}

{{/* Strings: a NEL (U+0085) is a line break to YAML, so the value would change on its way to the cluster. */}}
{{- define "go-service.validate.strings" -}}
{{- $errs := list }}
{{- $v := .Values }}
{{- range include "go-service.validate.lineBreaks" (dict "v" $v "path" "") | fromJsonArray }}
{{- $errs = append $errs (printf "%s contains U+0085 (NEL), which YAML reads as a line break, so the cluster would get another value. Remove it." (replace "\u0085" "\\u0085" .)) }}
{{- end }}
{{- toJson $errs }}
{{- end }}

{{/* Rollout: the strategy can replace pods and keeps capacity. */}}
{{- define "go-service.validate.rollout" -}}
{{- $errs := list }}
{{- $v := .Values }}
{{- $replicas := int64 (include "go-service.effectiveReplicas" .) }}
{{- if eq $v.strategy.type "RollingUpdate" }}
{{- $ru := $v.strategy.rollingUpdate }}
{{- if and (eq (include "go-service.isZero" $ru.maxSurge) "true") (eq (include "go-service.isZero" $ru.maxUnavailable) "true") }}
{{- $errs = append $errs "strategy.rollingUpdate.maxSurge and strategy.rollingUpdate.maxUnavailable are both 0: the rollout could never replace a pod. Set maxSurge to 1 or more (keep maxUnavailable 0 for zero downtime)." }}
{{- end }}
{{- $mu := $ru.maxUnavailable }}
{{- if or (and (kindIs "string" $mu) (eq $mu "100%")) (and (not (kindIs "string" $mu)) (not (include "go-service.autoscaler" $)) (gt $replicas 0) (ge (int64 $mu) $replicas)) }}
{{- $errs = append $errs (printf "strategy.rollingUpdate.maxUnavailable (%v) lets a rollout stop every one of the %d replicas at once. Set it below replicaCount; 0 keeps full capacity." $mu $replicas) }}
{{- end }}
{{- end }}
{{- if le (int64 $v.progressDeadlineSeconds) (int64 $v.minReadySeconds) }}
{{- $errs = append $errs (printf "progressDeadlineSeconds (%d) must be greater than minReadySeconds (%d): raise progressDeadlineSeconds." (int64 $v.progressDeadlineSeconds) (int64 $v.minReadySeconds)) }}
{{- end }}
{{- toJson $errs }}
{{- end }}

{{/* Shutdown budget: the preStop delay, the drain and the grace period agree, and the app reads them. */}}
{{- define "go-service.validate.shutdown" -}}
{{- $errs := list }}
{{- $v := .Values }}
{{- $s := $v.shutdown }}
{{- $mode := include "go-service.preStopMode" . }}
{{- $delay := int64 $s.preStop.delaySeconds }}
{{- $drain := int64 $s.drainTimeoutSeconds }}
{{- $grace := int64 (include "go-service.terminationGracePeriodSeconds" .) }}
{{- if and (eq $delay 0) (ne $mode "none") }}
{{- $errs = append $errs (printf "shutdown.preStop.delaySeconds is 0 with shutdown.preStop.mode %s: a preStop hook without a delay does nothing. Set delaySeconds to the endpoint propagation time (5 or more), or set mode to none." $s.preStop.mode) }}
{{- end }}
{{- if and (ne $mode "none") (ge $delay $grace) }}
{{- $fix := ternary "Raise shutdown.drainTimeoutSeconds or shutdown.bufferSeconds (the grace period is computed from them)." "Raise shutdown.terminationGracePeriodSeconds, or remove it to have it computed." (kindIs "invalid" $s.terminationGracePeriodSeconds) }}
{{- $errs = append $errs (printf "shutdown.preStop.delaySeconds (%d) is not shorter than the grace period (%ds): the preStop %s would be killed before the app ever gets SIGTERM. %s" $delay $grace $mode $fix) }}
{{- else if and (not (kindIs "invalid" $s.terminationGracePeriodSeconds)) (le $grace (add $delay $drain)) }}
{{- $errs = append $errs (printf "shutdown.terminationGracePeriodSeconds (%d) must be greater than shutdown.preStop.delaySeconds + shutdown.drainTimeoutSeconds (%d + %d = %d), or in-flight requests are killed mid-drain. Raise it, or remove it to have it computed (%d)." $grace $delay $drain (add $delay $drain) (add $delay $drain $s.bufferSeconds)) }}
{{- end }}
{{- if and (kindIs "invalid" $s.terminationGracePeriodSeconds) (eq (int64 $s.bufferSeconds) 0) (ne $mode "none") }}
{{- $errs = append $errs (printf "shutdown.bufferSeconds is 0: the computed grace period (%ds) is exactly shutdown.preStop.delaySeconds + shutdown.drainTimeoutSeconds, so a drain that needs its whole timeout is killed mid-response. Set bufferSeconds to 1 or more (the default is 5)." $grace) }}
{{- end }}
{{- if and (eq $s.preStop.mode "sleep") (not (semverCompare ">=1.30.0-0" $.Capabilities.KubeVersion.Version)) }}
{{- $errs = append $errs (printf "shutdown.preStop.mode is sleep, but the native sleep action needs Kubernetes 1.30 and this cluster is %s: the API server would drop the hook. Use mode auto (exec here) or exec." $.Capabilities.KubeVersion.Version) }}
{{- end }}
{{- $chartEnv := include "go-service.chartEnvNames" . | fromJsonArray }}
{{- range $i, $e := $v.env }}
{{- if and (kindIs "map" $e) (has $e.name $chartEnv) }}
{{- if hasPrefix "GO_SERVICE_" $e.name }}
{{- $errs = append $errs (printf "env[%d] sets %s, which the chart sets from shutdown.* (the shutdown contract): the app and the manifest would disagree. Remove it and set the shutdown value instead, or set shutdown.env to false to manage the variables yourself." $i $e.name) }}
{{- else }}
{{- $by := get (dict "GOMEMLIMIT" "goRuntime.gomemlimit" "GOMAXPROCS" "goRuntime.gomaxprocs") $e.name | default "otel.enabled" }}
{{- $errs = append $errs (printf "env[%d] sets %s, which the chart sets itself (%s is true): one of the two would be ignored. Remove it, or set %s to false to set it yourself." $i $e.name $by $by) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and (eq $s.preStop.mode "command") (empty $s.preStop.command) }}
{{- $errs = append $errs "shutdown.preStop.mode is command but shutdown.preStop.command is empty. Set the command (and declare how long it runs in shutdown.preStop.delaySeconds), or use mode auto." }}
{{- end }}
{{- if and (ne $s.preStop.mode "command") (not (empty $s.preStop.command)) }}
{{- $errs = append $errs (printf "shutdown.preStop.command is set but shutdown.preStop.mode is %s, so it would never run. Set mode to command, or remove the command." $s.preStop.mode) }}
{{- end }}
{{- if and (eq $mode "httpGet") (ne (include "go-service.portExists" (dict "ref" $s.preStop.httpGet.port "ports" $v.containerPorts)) "true") }}
{{- $errs = append $errs (printf "shutdown.preStop.httpGet.port (%v) is not one of containerPorts (%s). Use a name or number from containerPorts." $s.preStop.httpGet.port (keys $v.containerPorts | sortAlpha | join ", ")) }}
{{- end }}
{{- toJson $errs }}
{{- end }}

{{/* Probes and ports: every reference names a container port; liveness and readiness are distinct. */}}
{{- define "go-service.validate.ports" -}}
{{- $errs := list }}
{{- $v := .Values }}
{{- range $name := list "startup" "readiness" "liveness" }}
{{- $p := index $v.probes $name }}
{{- if $p.enabled }}
{{- $port := include "go-service.probePort" $p }}
{{- if and $port (ne (include "go-service.portExists" (dict "ref" $port "ports" $v.containerPorts)) "true") }}
{{- $errs = append $errs (printf "probes.%s%s port (%s) is not one of containerPorts (%s). Use a name or number from containerPorts, or add the port there." $name (ternary ".custom" "" (not (empty $p.custom))) $port (keys $v.containerPorts | sortAlpha | join ", ")) }}
{{- end }}
{{- end }}
{{- end }}
{{- range $name := list "startup" "readiness" "liveness" }}
{{- $c := (index $v.probes $name).custom }}
{{- if $c }}
{{- $handlers := list }}
{{- range $h := list "httpGet" "tcpSocket" "grpc" "exec" }}
{{- if hasKey $c $h }}
{{- $handlers = append $handlers $h }}
{{- end }}
{{- end }}
{{- if ne (len $handlers) 1 }}
{{- $errs = append $errs (printf "probes.%s.custom has %s: a probe takes exactly one handler, httpGet, tcpSocket, grpc or exec. Keep one." $name (ternary "no handler" (printf "%d handlers (%s)" (len $handlers) (join ", " $handlers)) (eq (len $handlers) 0))) }}
{{- end }}
{{- end }}
{{- end }}
{{- $r := $v.probes.readiness }}
{{- $l := $v.probes.liveness }}
{{- $rGRPC := eq (include "go-service.isGRPCProbe" $r) "true" }}
{{- $lGRPC := eq (include "go-service.isGRPCProbe" $l) "true" }}
{{- if and $r.enabled $l.enabled (empty $r.custom) (empty $l.custom) (not $rGRPC) (not $lGRPC) (eq $r.path $l.path) (eq (toString $r.port) (toString $l.port)) }}
{{- $errs = append $errs (printf "probes.liveness.path and probes.readiness.path are both %s on port %v: a draining pod fails readiness but must stay live, so one endpoint cannot answer both (the graceful package refuses it: its readiness endpoint answers 503 from the start of the drain, its liveness endpoint 200 until the process exits). Give probes.liveness.path its own endpoint, e.g. /healthz/live." $l.path $l.port) }}
{{- end }}
{{- $g := $v.grpc | default dict }}
{{- if and $g.enabled (not (hasKey $v.containerPorts "grpc")) }}
{{- $errs = append $errs (printf "grpc.enabled is true but containerPorts has no grpc port (%s): the gRPC server needs one. Add containerPorts.grpc, e.g. 9090." (keys $v.containerPorts | sortAlpha | join ", ")) }}
{{- end }}
{{- if and (dig "headless" "enabled" false $g) (not $g.enabled) }}
{{- $errs = append $errs "grpc.headless.enabled is true but grpc.enabled is false: the headless Service is for a gRPC port. Set grpc.enabled to true, or grpc.headless.enabled to false." }}
{{- end }}
{{- if and (ne (include "go-service.portExists" (dict "ref" $v.service.targetPort "ports" $v.containerPorts)) "true") (empty (include "go-service.requestPathSidecar" . | fromJson)) }}
{{- $errs = append $errs (printf "service.targetPort (%v) is not one of containerPorts (%s) nor a port of a sidecar." $v.service.targetPort (keys $v.containerPorts | sortAlpha | join ", ")) }}
{{- end }}
{{- if and $v.serviceMonitor.enabled (not (hasKey $v.containerPorts $v.serviceMonitor.port)) }}
{{- $errs = append $errs (printf "serviceMonitor.port (%s) is not a port name in containerPorts (%s)." $v.serviceMonitor.port (keys $v.containerPorts | sortAlpha | join ", ")) }}
{{- end }}
{{- toJson $errs }}
{{- end }}

{{/* Resources: a request above its limit, which the API server rejects. */}}
{{- define "go-service.validate.resources" -}}
{{- $errs := list }}
{{- $r := .Values.resources | default dict }}
{{- $limits := $r.limits | default dict }}
{{- range $name, $req := $r.requests | default dict }}
{{- if hasKey $limits $name }}
{{- $lim := get $limits $name }}
{{- if gt (include "go-service.quantityValue" $req | float64) (include "go-service.quantityValue" $lim | float64) }}
{{- $errs = append $errs (printf "resources.requests.%s (%v) is greater than resources.limits.%s (%v): the API server rejects the pod. Lower the request or raise the limit." $name $req $name $lim) }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $errs }}
{{- end }}

{{/* The value of a Kubernetes quantity (100m, 1.5Gi, 2, 1e3) as a number, for comparisons. The schema has
     already checked its form. */}}
{{- define "go-service.quantityValue" -}}
{{- $q := toString . }}
{{- $num := regexFind "^[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)" $q }}
{{- $suffix := trimPrefix $num $q }}
{{- $mult := dict "" 1.0 "n" 1e-9 "u" 1e-6 "m" 1e-3 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "P" 1e15 "E" 1e18 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 "Ei" 1152921504606846976.0 }}
{{- if hasKey $mult $suffix }}
{{- mulf (float64 $num) (get $mult $suffix) }}
{{- else }}
{{- float64 $q }}
{{- end }}
{{- end }}

{{/* Volumes: every volume name once, every mount path once, every mount of a volume the pod has. The
     chart's own volumes (tmp, config) count. */}}
{{- define "go-service.validate.volumes" -}}
{{- $errs := list }}
{{- $v := .Values }}
{{- $volumes := dict }}
{{- if $v.tmpVolume.enabled }}
{{- $_ := set $volumes "tmp" "tmpVolume" }}
{{- end }}
{{- $configMounted := and $v.config.data $v.config.mountPath }}
{{- if $configMounted }}
{{- $_ := set $volumes "config" "config.mountPath" }}
{{- end }}
{{- $sec := $v.secret | default dict }}
{{- $secretMounted := and $sec.data $sec.mountPath }}
{{- if $secretMounted }}
{{- $_ := set $volumes "secret" "secret.mountPath" }}
{{- end }}
{{- range $i, $vol := $v.extraVolumes | default list }}
{{- $name := toString ($vol.name | default "") }}
{{- if hasKey $volumes $name }}
{{- $errs = append $errs (printf "extraVolumes[%d].name (%s) is already a volume of the pod (%s): the API server rejects duplicate volume names. Rename it." $i $name (get $volumes $name)) }}
{{- else }}
{{- $_ := set $volumes $name (printf "extraVolumes[%d]" $i) }}
{{- end }}
{{- end }}
{{- $paths := dict }}
{{- if $v.tmpVolume.enabled }}
{{- $_ := set $paths (toString $v.tmpVolume.mountPath) "tmpVolume.mountPath" }}
{{- end }}
{{- if $configMounted }}
{{- $_ := set $paths (toString $v.config.mountPath) "config.mountPath" }}
{{- end }}
{{- if $secretMounted }}
{{- if hasKey $paths (toString $sec.mountPath) }}
{{- $errs = append $errs (printf "secret.mountPath (%s) is already mounted (%s): the API server rejects two mounts at one path. Use another path." $sec.mountPath (get $paths (toString $sec.mountPath))) }}
{{- end }}
{{- $_ := set $paths (toString $sec.mountPath) "secret.mountPath" }}
{{- end }}
{{- range $list := list "sidecars" "initContainers" }}
{{- range $i, $c := index $v $list | default list }}
{{- range $j, $m := $c.volumeMounts | default list }}
{{- if not (hasKey $volumes (toString $m.name)) }}
{{- $errs = append $errs (printf "%s[%d].volumeMounts[%d].name (%s) is not a volume of the pod. Add it to extraVolumes, or mount one of: %s." $list $i $j $m.name (keys $volumes | sortAlpha | join ", " | default "(none)")) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- range $i, $m := $v.extraVolumeMounts | default list }}
{{- $path := toString ($m.mountPath | default "") }}
{{- if hasKey $paths $path }}
{{- $errs = append $errs (printf "extraVolumeMounts[%d].mountPath (%s) is already mounted (%s): the API server rejects two mounts at one path. Use another path." $i $path (get $paths $path)) }}
{{- else }}
{{- $_ := set $paths $path (printf "extraVolumeMounts[%d]" $i) }}
{{- end }}
{{- $name := toString ($m.name | default "") }}
{{- if not (hasKey $volumes $name) }}
{{- $errs = append $errs (printf "extraVolumeMounts[%d].name (%s) is not a volume of the pod. Add it to extraVolumes, or mount one of: %s." $i $name (keys $volumes | sortAlpha | join ", " | default "(none)")) }}
{{- end }}
{{- end }}
{{- toJson $errs }}
{{- end }}

{{/* Scheduling: spread constraints the API server would reject. */}}
{{- define "go-service.validate.scheduling" -}}
{{- $errs := list }}
{{- $v := .Values }}
{{- $seen := dict }}
{{- range $i, $c := $v.topologySpreadConstraints | default list }}
{{- $pair := printf "%v/%v" $c.topologyKey $c.whenUnsatisfiable }}
{{- if hasKey $seen $pair }}
{{- $errs = append $errs (printf "topologySpreadConstraints[%d] repeats topologyKey %v with whenUnsatisfiable %v (%s): the API server rejects the pair twice. Remove one." $i $c.topologyKey $c.whenUnsatisfiable (get $seen $pair)) }}
{{- else }}
{{- $_ := set $seen $pair (printf "topologySpreadConstraints[%d]" $i) }}
{{- end }}
{{- end }}
{{- if and $v.topologySpread.enabled (not $v.topologySpreadConstraints) }}
{{- if not $v.topologySpread.topologyKeys }}
{{- $errs = append $errs "topologySpread.enabled is true but topologySpread.topologyKeys is empty. List at least one node label (e.g. kubernetes.io/hostname), or set topologySpread.enabled to false." }}
{{- end }}
{{- $keys := dict }}
{{- range $i, $e := $v.topologySpread.topologyKeys | default list }}
{{- $k := include "go-service.spreadKey" (dict "key" $e "defaults" $v.topologySpread) | fromJson }}
{{- if hasKey $keys $k.key }}
{{- $errs = append $errs (printf "topologySpread.topologyKeys[%d] (%v) is listed twice: the API server rejects the repeated constraint. Remove it." $i $k.key) }}
{{- end }}
{{- $_ := set $keys $k.key true }}
{{- end }}
{{- end }}
{{- toJson $errs }}
{{- end }}

{{/* Security: combinations the API server rejects. */}}
{{- define "go-service.validate.security" -}}
{{- $errs := list }}
{{- $v := .Values }}
{{- $sc := $v.securityContext | default dict }}
{{- if and $sc.privileged (hasKey $sc "allowPrivilegeEscalation") (not $sc.allowPrivilegeEscalation) }}
{{- $errs = append $errs "securityContext.privileged is true while securityContext.allowPrivilegeEscalation is false: the API server rejects the pod (a privileged container always can escalate). Remove privileged, or set allowPrivilegeEscalation to true." }}
{{- end }}
{{- if and (hasKey $sc "allowPrivilegeEscalation") (not $sc.allowPrivilegeEscalation) (has "SYS_ADMIN" (include "go-service.capabilitiesAdded" $sc | fromJsonArray)) }}
{{- $errs = append $errs "securityContext.capabilities.add has SYS_ADMIN while securityContext.allowPrivilegeEscalation is false: the API server rejects the pod. Drop SYS_ADMIN, or set allowPrivilegeEscalation to true." }}
{{- end }}
{{- toJson $errs }}
{{- end }}

{{/* Disruption: the HPA bounds and the PodDisruptionBudget, checked against the replica count it will see. */}}
{{- define "go-service.validate.disruption" -}}
{{- $errs := list }}
{{- $v := .Values }}
{{- $replicas := int64 (include "go-service.effectiveReplicas" .) }}
{{- $hpa := $v.autoscaling }}
{{- if $hpa.enabled }}
{{- if gt (int64 $hpa.minReplicas) (int64 $hpa.maxReplicas) }}
{{- $errs = append $errs (printf "autoscaling.minReplicas (%d) is greater than autoscaling.maxReplicas (%d). Lower minReplicas or raise maxReplicas." (int64 $hpa.minReplicas) (int64 $hpa.maxReplicas)) }}
{{- end }}
{{- if and (kindIs "invalid" $hpa.targetCPUUtilizationPercentage) (kindIs "invalid" $hpa.targetMemoryUtilizationPercentage) (empty $hpa.metrics) }}
{{- $errs = append $errs "autoscaling.enabled is true but no metric is set. Set autoscaling.targetCPUUtilizationPercentage, autoscaling.targetMemoryUtilizationPercentage or autoscaling.metrics." }}
{{- end }}
{{- end }}
{{- $pdb := $v.podDisruptionBudget }}
{{- if and $pdb.enabled (ge $replicas 2) (not $pdb.allowNoDisruptions) }}
{{- $what := include "go-service.replicasValue" $ }}
{{- if not (kindIs "invalid" $pdb.minAvailable) }}
{{- $min := $pdb.minAvailable }}
{{- $need := int64 (include "go-service.scaled" (dict "value" $min "of" $replicas)) }}
{{- if ge (int64 $need) $replicas }}
{{- $errs = append $errs (printf "podDisruptionBudget.minAvailable (%v) needs %d of %d pods (%s) available: no eviction is ever allowed and every node drain blocks. Lower minAvailable, use maxUnavailable, or set podDisruptionBudget.allowNoDisruptions to true." $min (int64 $need) $replicas $what) }}
{{- end }}
{{- else if eq (include "go-service.isZero" $pdb.maxUnavailable) "true" }}
{{- $errs = append $errs (printf "podDisruptionBudget.maxUnavailable (%v) allows no eviction: every node drain blocks. Set it to 1 or more, or set podDisruptionBudget.allowNoDisruptions to true." $pdb.maxUnavailable) }}
{{- end }}
{{- end }}
{{- toJson $errs }}
{{- end }}

{{/* Exposure and configuration: routes, monitors and config that would attach to nothing. */}}
{{- define "go-service.validate.exposure" -}}
{{- $errs := list }}
{{- $v := .Values }}
{{- if and ($v.grpcRoute | default dict).enabled (empty $v.grpcRoute.parentRefs) }}
{{- $errs = append $errs "grpcRoute.enabled is true but grpcRoute.parentRefs is empty: the route would attach to no Gateway. Name the Gateway in grpcRoute.parentRefs." }}
{{- end }}
{{- $svc := $v.service }}
{{- if and $svc.externalTrafficPolicy (not (has $svc.type (list "NodePort" "LoadBalancer"))) }}
{{- $errs = append $errs (printf "service.externalTrafficPolicy is %s but service.type is %s: the API server accepts it only for NodePort and LoadBalancer. Remove it, or change the type." $svc.externalTrafficPolicy $svc.type) }}
{{- end }}
{{- if and (eq (toString $svc.trafficDistribution) "PreferClose") (not (semverCompare ">=1.31.0-0" $.Capabilities.KubeVersion.Version)) }}
{{- $errs = append $errs (printf "service.trafficDistribution PreferClose needs Kubernetes 1.31 and this cluster is %s: the API server would drop it. Remove it." $.Capabilities.KubeVersion.Version) }}
{{- end }}
{{- if and (has (toString $svc.trafficDistribution) (list "PreferSameZone" "PreferSameNode")) (not (semverCompare ">=1.34.0-0" $.Capabilities.KubeVersion.Version)) }}
{{- $errs = append $errs (printf "service.trafficDistribution %s needs Kubernetes 1.34 and this cluster is %s: the API server would drop it. Use PreferClose (1.31), or remove it." $svc.trafficDistribution $.Capabilities.KubeVersion.Version) }}
{{- end }}
{{- if and (not (kindIs "invalid" $svc.sessionAffinityTimeoutSeconds)) (ne $svc.sessionAffinity "ClientIP") }}
{{- $errs = append $errs "service.sessionAffinityTimeoutSeconds is set but service.sessionAffinity is not ClientIP, so it does nothing. Set sessionAffinity to ClientIP, or remove the timeout." }}
{{- end }}
{{- $portNames := dict (include "go-service.servicePortName" $) "the main port" }}
{{- $portNumbers := dict (toString (int64 $svc.port)) "service.port" }}
{{- range $name := include "go-service.serviceContainerPorts" $ | fromJsonArray }}
{{- $_ := set $portNames $name (printf "containerPorts.%s" $name) }}
{{- $_ := set $portNumbers (toString (int64 (index $v.containerPorts $name))) (printf "containerPorts.%s" $name) }}
{{- end }}
{{- range $i, $p := $svc.extraPorts }}
{{- if hasKey $portNames (toString ($p.name | default "")) }}
{{- $errs = append $errs (printf "service.extraPorts[%d].name (%s) is already a port of the Service (%s). Rename it." $i $p.name (get $portNames (toString $p.name))) }}
{{- end }}
{{- if hasKey $portNumbers (toString (int64 $p.port)) }}
{{- $errs = append $errs (printf "service.extraPorts[%d].port (%d) is already a port of the Service (%s). Use another port." $i (int64 $p.port) (get $portNumbers (toString (int64 $p.port)))) }}
{{- end }}
{{- if not $p.name }}
{{- $errs = append $errs (printf "service.extraPorts[%d] has no name: a Service with several ports needs a name on each. Name it." $i) }}
{{- end }}
{{- $_ := set $portNames (toString ($p.name | default "")) (printf "service.extraPorts[%d]" $i) }}
{{- $_ := set $portNumbers (toString (int64 $p.port)) (printf "service.extraPorts[%d]" $i) }}
{{- end }}
{{- if and $v.httpRoute.enabled (empty $v.httpRoute.parentRefs) }}
{{- $errs = append $errs "httpRoute.enabled is true but httpRoute.parentRefs is empty: the route would attach to no Gateway. Name the Gateway in httpRoute.parentRefs." }}
{{- end }}
{{- $sec := $v.secret | default dict }}
{{- if and (not (empty $sec.data)) (not $sec.asEnv) (empty $sec.mountPath) }}
{{- $errs = append $errs "secret.data is set but neither secret.asEnv nor secret.mountPath uses it. Set secret.asEnv to true or secret.mountPath to a directory." }}
{{- end }}
{{- $seen := dict }}
{{- range $i, $n := ($v.existingSecrets | default dict).names }}
{{- if hasKey $seen $n }}
{{- $errs = append $errs (printf "existingSecrets.names[%d] (%s) is listed twice. Remove one." $i $n) }}
{{- end }}
{{- $_ := set $seen $n true }}
{{- if and $sec.data (eq $n (include "go-service.fullname" $)) }}
{{- $errs = append $errs (printf "existingSecrets.names[%d] (%s) is the Secret the chart creates from secret.data. Name another Secret, or leave secret.data empty." $i $n) }}
{{- end }}
{{- end }}
{{- if and (not (empty $v.config.data)) (not $v.config.asEnv) (empty $v.config.mountPath) }}
{{- $errs = append $errs "config.data is set but neither config.asEnv nor config.mountPath uses it. Set config.asEnv to true or config.mountPath to a directory." }}
{{- end }}
{{- toJson $errs }}
{{- end }}

{{/* The paths of the strings (values and keys) under .v that contain U+0085, as a JSON list. */}}
{{- define "go-service.validate.lineBreaks" -}}
{{- $out := list }}
{{- if kindIs "map" .v }}
  {{- range $k, $e := .v }}
    {{- $p := ternary $k (printf "%s.%s" $.path $k) (eq $.path "") }}
    {{- if contains "\u0085" $k }}
      {{- $out = append $out $p }}
    {{- end }}
    {{- $out = concat $out (include "go-service.validate.lineBreaks" (dict "v" $e "path" $p) | fromJsonArray) }}
  {{- end }}
{{- else if kindIs "slice" .v }}
  {{- range $i, $e := .v }}
    {{- $out = concat $out (include "go-service.validate.lineBreaks" (dict "v" $e "path" (printf "%s[%d]" $.path $i)) | fromJsonArray) }}
  {{- end }}
{{- else if and (kindIs "string" .v) (contains "\u0085" .v) }}
  {{- $out = append $out .path }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* Names, labels and image references the API server or a registry would refuse, as a JSON list. */}}
{{- define "go-service.validate.names" -}}
{{- $errs := list }}
{{- $v := .Values }}
{{- $full := include "go-service.fullname" . }}
{{- if not (regexMatch "^[a-z]([-a-z0-9]*[a-z0-9])?$" $full) }}
  {{- $errs = append $errs (printf "the resources would be named %q (from the release name %q and nameOverride), but the Service's name must be an RFC 1035 label: lowercase letters, digits and '-', starting with a letter. Set fullnameOverride (e.g. svc-%s)." $full .Release.Name (regexReplaceAll "[^-a-z0-9]" (lower $full) "")) }}
{{- end }}
{{- range $key := list "app.kubernetes.io/name" "app.kubernetes.io/instance" }}
  {{- range $field := list "commonLabels" "podLabels" "global.commonLabels" }}
    {{- if hasKey (ternary (($v.global | default dict).commonLabels | default dict) (index $v $field | default dict) (eq $field "global.commonLabels")) $key }}
      {{- $errs = append $errs (printf "%s sets %s, a label of the Deployment's selector: the selector would no longer match its pods (and it cannot change after install). Remove it from %s; use nameOverride or the release name instead." $field $key $field) }}
    {{- end }}
  {{- end }}
{{- end }}
{{- $keyed := dict "commonLabels" $v.commonLabels "podLabels" $v.podLabels "podAnnotations" $v.podAnnotations "deploymentAnnotations" $v.deploymentAnnotations "service.labels" $v.service.labels "service.annotations" $v.service.annotations "serviceAccount.annotations" $v.serviceAccount.annotations "ingress.annotations" $v.ingress.annotations "serviceMonitor.labels" $v.serviceMonitor.labels "global.commonLabels" (($v.global | default dict).commonLabels | default dict) }}
{{- range $field, $m := $keyed }}
  {{- range $key, $_ := $m }}
    {{- $parts := splitList "/" $key }}
    {{- $ok := regexMatch "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$" $key }}
    {{- if and $ok (eq (len $parts) 2) (gt (len (first $parts)) 253) }}
      {{- $ok = false }}
    {{- end }}
    {{- if not $ok }}
      {{- $errs = append $errs (printf "%s has the key %q, which the API server refuses: a key is an optional DNS subdomain prefix and '/', then a name of at most 63 characters (letters, digits, '-', '_', '.'), starting and ending with a letter or digit. Rename it." $field $key) }}
    {{- end }}
  {{- end }}
{{- end }}
{{- range $path, $img := dict "image" $v.image "tests.image" $v.tests.image }}
  {{- if and (hasKey $img "tag") (not (kindIs "string" $img.tag)) (not (kindIs "invalid" $img.tag)) }}
    {{- $errs = append $errs (printf "%s.tag is the number %v, not a string: YAML reads an unquoted tag as a number (1.10 becomes 1.1, 20240101 may become 2.0240101e+07). Quote the tag as you wrote it, e.g. tag: \"1.10\"." $path $img.tag) }}
  {{- end }}
{{- end }}
{{- toJson $errs }}
{{- end }}

{{/* Sidecars and init containers: names and ports that clash with the app or each other, and native
     sidecars on a cluster without them. */}}
{{- define "go-service.validate.containers" -}}
{{- $errs := list }}
{{- $v := .Values }}
{{- if and (eq ($v.sidecarMode | default "auto") "native") (not (semverCompare ">=1.29.0-0" .Capabilities.KubeVersion.Version)) }}
{{- $errs = append $errs (printf "sidecarMode is native, but native sidecars (init containers with restartPolicy Always) need Kubernetes 1.29 and this cluster is %s. Use sidecarMode auto (regular containers here) and give a sidecar in the request path a preStop hook of its own." .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- $names := dict "app" "the app's container" }}
{{- $ports := dict }}
{{- range $name, $port := $v.containerPorts }}
{{- $_ := set $ports (toString (int64 $port)) (printf "containerPorts.%s" $name) }}
{{- end }}
{{- range $list := list "sidecars" "initContainers" }}
{{- range $i, $c := index $v $list | default list }}
{{- $at := printf "%s[%d]" $list $i }}
{{- if hasKey $names $c.name }}
{{- $errs = append $errs (printf "%s.name (%s) is already %s: container names are unique in a pod. Rename it." $at $c.name (get $names $c.name)) }}
{{- else }}
{{- $_ := set $names $c.name $at }}
{{- end }}
{{- if and (eq $list "sidecars") (hasKey $c "restartPolicy") }}
{{- $errs = append $errs (printf "%s.restartPolicy is set: sidecarMode decides how sidecars run (native sets restartPolicy Always). Remove it." $at) }}
{{- end }}
{{- range $j, $p := $c.ports | default list }}
{{- $n := toString (int64 $p.containerPort) }}
{{- if hasKey $ports $n }}
{{- $errs = append $errs (printf "%s.ports[%d].containerPort (%s) is already %s: the containers of a pod share one network namespace, so only one can listen on it. Use another port." $at $j $n (get $ports $n)) }}
{{- else }}
{{- $_ := set $ports $n (printf "%s.ports[%d]" $at $j) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $errs }}
{{- end }}

{{/* Templates in values: they may read the release's values and names, never the cluster (lookup), and
     what they render must still be valid where it goes. extraObjects must render to objects. */}}
{{- define "go-service.validate.templates" -}}
{{- $errs := list }}
{{- $v := .Values }}
{{- $strings := list }}
{{- $maps := dict "podAnnotations" $v.podAnnotations "deploymentAnnotations" $v.deploymentAnnotations "service.annotations" $v.service.annotations "ingress.annotations" $v.ingress.annotations "httpRoute.annotations" $v.httpRoute.annotations "serviceAccount.annotations" $v.serviceAccount.annotations "config.data" $v.config.data }}
{{- range $field, $m := $maps }}
  {{- range $k, $s := $m | default dict }}
    {{- $strings = append $strings (list (printf "%s.%s" $field $k) $s) }}
  {{- end }}
{{- end }}
{{- range $i, $e := $v.env | default list }}
  {{- $strings = append $strings (list (printf "env[%d].value" $i) $e.value) }}
{{- end }}
{{- range $i, $h := $v.ingress.hosts | default list }}
  {{- $strings = append $strings (list (printf "ingress.hosts[%d].host" $i) $h.host) }}
{{- end }}
{{- range $i, $t := $v.ingress.tls | default list }}
  {{- range $j, $h := $t.hosts | default list }}
    {{- $strings = append $strings (list (printf "ingress.tls[%d].hosts[%d]" $i $j) $h) }}
  {{- end }}
{{- end }}
{{- range $i, $o := $v.extraObjects | default list }}
  {{- $strings = append $strings (list (printf "extraObjects[%d]" $i) (ternary $o (toYaml $o) (kindIs "string" $o))) }}
{{- end }}
{{- $lookup := false }}
{{- range $strings }}
  {{- $s := index . 1 }}
  {{- if and (kindIs "string" $s) (regexMatch "\\{\\{[^}]*\\blookup\\b" $s) }}
    {{- $errs = append $errs (printf "%s calls lookup in a template: values may be templates (tpl) that read the release's values and names, but not the cluster. Remove the lookup." (index . 0)) }}
    {{- $lookup = true }}
  {{- end }}
{{- end }}
{{- if not $lookup }}
  {{- $hostRe := "^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$" }}
  {{- range $i, $h := $v.ingress.hosts | default list }}
    {{- if and (kindIs "string" $h.host) (contains "{{" $h.host) }}
      {{- $r := include "go-service.tpl" (dict "value" $h.host "context" $ "path" (printf "ingress.hosts[%d].host" $i)) }}
      {{- if or (gt (len $r) 253) (not (regexMatch $hostRe $r)) }}
        {{- $errs = append $errs (printf "ingress.hosts[%d].host renders %q, which is not a host name (lowercase letters, digits, '-' and '.'). Fix the template or the values it reads." $i $r) }}
      {{- end }}
    {{- end }}
  {{- end }}
  {{- range $i, $o := $v.extraObjects | default list }}
    {{- $text := include "go-service.tpl" (dict "value" (ternary $o (toYaml $o) (kindIs "string" $o)) "context" $ "path" (printf "extraObjects[%d]" $i)) }}
    {{- $docs := 0 }}
    {{- range regexSplit "(?m)^---[ \\t]*(#.*)?$" $text -1 }}
      {{- if regexMatch "(?m)^[ \\t]*[^ \\t#\\r\\n]" . }}{{ $docs = add1 $docs }}{{ end }}
    {{- end }}
    {{- $r := fromYaml $text }}
    {{- if gt $docs 1 }}
      {{- $errs = append $errs (printf "extraObjects[%d] renders %d documents: each entry is one object, so that each is checked and a mistake names its entry. Give each object its own entry." $i $docs) }}
    {{- else if or (hasKey $r "Error") (not (kindIs "string" $r.apiVersion)) (not (kindIs "string" $r.kind)) (not (and (kindIs "map" $r.metadata) (kindIs "string" $r.metadata.name) $r.metadata.name)) }}
      {{- $errs = append $errs (printf "extraObjects[%d] does not render to one Kubernetes object with apiVersion, kind and metadata.name as strings%s. Give it those (one object per entry)." $i (ternary (printf " (%v)" (get $r "Error")) "" (hasKey $r "Error"))) }}
    {{- else }}
      {{- $msg := include "go-service.objectNameProblem" (dict "apiVersion" $r.apiVersion "kind" $r.kind "name" $r.metadata.name) }}
      {{- if $msg }}
        {{- $errs = append $errs (printf "extraObjects[%d].metadata.name (%s) %s" $i $r.metadata.name $msg) }}
      {{- end }}
    {{- end }}
  {{- end }}
{{- end }}
{{- toJson $errs }}
{{- end }}

{{/* What is wrong with an object's name for its kind, as the API server validates it, with the fix; empty
     when nothing is: RBAC objects take any path segment (no '/' or '%', not '.' or '..'), Services and
     Namespaces a DNS label, every other kind (custom resources included) a DNS subdomain. */}}
{{- define "go-service.objectNameProblem" -}}
{{- $name := .name }}
{{- $label := "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" }}
{{- $subdomain := "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$" }}
{{- if hasPrefix "rbac.authorization.k8s.io/" .apiVersion }}
  {{- if or (contains "/" $name) (contains "%" $name) (eq $name ".") (eq $name "..") }}
    {{- printf "is not a valid %s name: it may not contain '/' or '%%', nor be '.' or '..'. Rename it." .kind }}
  {{- end }}
{{- else if and (eq .apiVersion "v1") (has .kind (list "Service" "Namespace")) }}
  {{- if or (gt (len $name) 63) (not (regexMatch $label $name)) }}
    {{- printf "is not a valid %s name: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit. Rename it." .kind }}
  {{- end }}
{{- else if or (gt (len $name) 253) (not (regexMatch $subdomain $name)) }}
  {{- printf "is not a valid %s name: at most 253 lowercase letters, digits, '-' and '.', each part starting and ending with a letter or digit. Rename it." .kind }}
{{- end }}
{{- end }}

{{/* Scaling: one horizontal autoscaler (HPA or KEDA), and a VPA that never fights it over a resource. */}}
{{- define "go-service.validate.scaling" -}}
{{- $errs := list }}
{{- $v := .Values }}
{{- $keda := $v.keda | default dict }}
{{- $vpa := $v.vpa | default dict }}
{{- if and $keda.enabled $v.autoscaling.enabled }}
{{- $errs = append $errs "keda.enabled and autoscaling.enabled are both true: KEDA creates its own HPA, and two HPAs on one Deployment fight over its scale. Turn one off." }}
{{- end }}
{{- if $keda.enabled }}
{{- if empty $keda.triggers }}
{{- $errs = append $errs "keda.enabled is true but keda.triggers is empty: KEDA needs at least one trigger to scale on. Add one (e.g. type: prometheus)." }}
{{- end }}
{{- if gt (int64 $keda.minReplicaCount) (int64 $keda.maxReplicaCount) }}
{{- $errs = append $errs (printf "keda.minReplicaCount (%d) is greater than keda.maxReplicaCount (%d). Lower minReplicaCount or raise maxReplicaCount." (int64 $keda.minReplicaCount) (int64 $keda.maxReplicaCount)) }}
{{- end }}
{{- end }}
{{- $requests := ($v.resources | default dict).requests | default dict }}
{{- $utilization := list }}
{{- if $v.autoscaling.enabled }}
  {{- if not (kindIs "invalid" $v.autoscaling.targetCPUUtilizationPercentage) }}{{ $utilization = append $utilization (list "cpu" "autoscaling.targetCPUUtilizationPercentage") }}{{ end }}
  {{- if not (kindIs "invalid" $v.autoscaling.targetMemoryUtilizationPercentage) }}{{ $utilization = append $utilization (list "memory" "autoscaling.targetMemoryUtilizationPercentage") }}{{ end }}
  {{- range $i, $m := $v.autoscaling.metrics | default list }}
    {{- $res := $m.resource | default dict }}
    {{- if and (eq (toString $m.type) "Resource") (eq (toString (($res.target | default dict).type)) "Utilization") }}
      {{- $utilization = append $utilization (list (toString $res.name) (printf "autoscaling.metrics[%d]" $i)) }}
    {{- end }}
  {{- end }}
{{- end }}
{{- if $keda.enabled }}
  {{- range $i, $tr := $keda.triggers | default list }}
    {{- if and (has (toString $tr.type) (list "cpu" "memory")) (eq (toString ($tr.metricType | default "Utilization")) "Utilization") }}
      {{- $utilization = append $utilization (list (toString $tr.type) (printf "keda.triggers[%d]" $i)) }}
    {{- end }}
  {{- end }}
{{- end }}
{{- range $u := $utilization }}
  {{- if not (hasKey $requests (index $u 0)) }}
    {{- $errs = append $errs (printf "%s scales on %s utilization, a share of resources.requests.%s, which is not set: the autoscaler cannot compute it (FailedGetResourceMetric: missing request for %s) and never scales. Set resources.requests.%s, or scale on an AverageValue target instead (in autoscaling.metrics, or a KEDA trigger's metricType)." (index $u 1) (index $u 0) (index $u 0) (index $u 0) (index $u 0)) }}
  {{- end }}
{{- end }}
{{- if and $vpa.enabled (ne $vpa.updateMode "Off") }}
{{- $scaledOn := list }}
{{- if $v.autoscaling.enabled }}
  {{- if not (kindIs "invalid" $v.autoscaling.targetCPUUtilizationPercentage) }}{{ $scaledOn = append $scaledOn "cpu" }}{{ end }}
  {{- if not (kindIs "invalid" $v.autoscaling.targetMemoryUtilizationPercentage) }}{{ $scaledOn = append $scaledOn "memory" }}{{ end }}
  {{- range $v.autoscaling.metrics | default list }}
    {{- with (.resource | default .containerResource) }}{{ $scaledOn = append $scaledOn (toString .name) }}{{ end }}
  {{- end }}
{{- end }}
{{- if $keda.enabled }}
  {{- range $keda.triggers | default list }}
    {{- if has (toString .type) (list "cpu" "memory") }}{{ $scaledOn = append $scaledOn (toString .type) }}{{ end }}
  {{- end }}
{{- end }}
{{- range $r := $vpa.controlledResources | default list }}
  {{- if has $r $scaledOn }}
    {{- $errs = append $errs (printf "vpa.updateMode is %s and vpa.controlledResources has %s, which the %s also scales on: the VPA raises the request, the utilization drops, the autoscaler removes pods, and the two fight. Use vpa.updateMode Off (recommendations only), or take %s out of vpa.controlledResources." $vpa.updateMode $r (ternary "HPA" "KEDA ScaledObject" (eq (include "go-service.autoscaler" $) "hpa")) $r) }}
  {{- end }}
{{- end }}
{{- end }}
{{- toJson $errs }}
{{- end }}

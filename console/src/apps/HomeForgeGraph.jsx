// HomeForge's topology drawn with React Flow: the gateway and one node per device, as
// `/topology/` lays them out, each device node showing its live status and state; edges are
// green to online devices, grey to offline ones (as the API colours them).
import { Handle, Position, ReactFlow, Background } from '@xyflow/react';
import '@xyflow/react/dist/style.css';

const ONLINE = '#10B981';
const OFFLINE = '#9CA3AF';

/** A state value as text: JSON for anything but strings. */
export function shown(value) {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function DeviceNode({ data }) {
  const state = Object.entries(data.current_state ?? {}).sort(([a], [b]) => a.localeCompare(b));
  return (
    <div className="hf-node" data-node={data.id} data-status={data.status}>
      <Handle type="target" position={Position.Left} />
      <strong>{data.label}</strong>
      <small>{data.device_type} · <span className={`status-${data.status}`}>{data.status}</span></small>
      <dl>
        {state.map(([k, v]) => (
          <div key={k}><dt>{k}</dt><dd data-state={k}>{shown(v)}</dd></div>
        ))}
      </dl>
    </div>
  );
}

// Outside the component: React Flow redraws every node when this object changes.
const NODE_TYPES = { device: DeviceNode };
// A home with one or two devices stays at full size rather than zoomed in.
const FIT = { maxZoom: 1, padding: 0.2 };

/** The topology with each device's node and edge following `devices` (id → REST device). */
export function Topology({ topology, devices }) {
  const nodes = topology.nodes.map((n) => {
    const d = devices.get(Number(n.id));
    if (n.type !== 'device') return { ...n, draggable: false };
    return {
      ...n,
      draggable: false,
      data: { ...n.data, id: n.id, status: d?.status ?? n.data.status, current_state: d?.current_state ?? {} },
    };
  });
  const edges = topology.edges.map((e) => {
    const status = devices.get(Number(e.target))?.status;
    return status ? { ...e, style: { ...e.style, stroke: status === 'online' ? ONLINE : OFFLINE } } : e;
  });
  if (!nodes.length) return <div className="flow" />;
  // Keyed by the node count: `fitView` fits once, so a read with other devices fits anew.
  return (
    <div className="flow" data-topology={nodes.length}>
      <ReactFlow key={nodes.length} nodes={nodes} edges={edges} nodeTypes={NODE_TYPES} fitView fitViewOptions={FIT}
        nodesConnectable={false} elementsSelectable={false}>
        <Background />
      </ReactFlow>
    </div>
  );
}

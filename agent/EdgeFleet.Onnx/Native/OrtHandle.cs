using System.Runtime.InteropServices;

namespace EdgeFleet.Onnx.Native;

/// <summary>Owns one ORT object and releases it with the matching <c>Release*</c> function.</summary>
internal sealed unsafe class OrtHandle : SafeHandle
{
    private readonly delegate* unmanaged<nint, void> _release;

    public OrtHandle(nint handle, delegate* unmanaged<nint, void> release)
        : base(0, ownsHandle: true)
    {
        SetHandle(handle);
        _release = release;
    }

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle()
    {
        _release(handle);
        return true;
    }
}

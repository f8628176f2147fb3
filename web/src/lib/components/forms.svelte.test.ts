import { fireEvent, render, screen } from '@testing-library/svelte';
import { flushSync } from 'svelte';
import { describe, expect, it, vi } from 'vitest';
import { emptyDraft, validateTerms } from '$lib/terms';
import ConfirmDialog from './ConfirmDialog.svelte';
import FormDialog from './FormDialog.svelte';
import TermsFields from './TermsFields.svelte';
import { createRawSnippet } from 'svelte';

const text = (t: string) => createRawSnippet(() => ({ render: () => `<p>${t}</p>` }));

describe('TermsFields', () => {
  it('shows a client problem once the field is left, and server errors at once', async () => {
    const draft = $state(emptyDraft());
    const clientErrors = $derived(validateTerms(draft));
    const props = $state({ draft, serverErrors: { allowedVersions: '"x" is not a semver range' } as Record<string, string>, showAll: false });
    render(TermsFields, {
      get draft() {
        return props.draft;
      },
      get clientErrors() {
        return clientErrors;
      },
      get serverErrors() {
        return props.serverErrors;
      },
      get showAll() {
        return props.showAll;
      },
    });
    expect(screen.getByText('"x" is not a semver range')).toBeTruthy();

    const seats = screen.getByLabelText('Seats') as HTMLInputElement;
    await fireEvent.input(seats, { target: { value: '4' } });
    expect(draft.seats).toBe('4');
    expect(screen.queryByText(/FLOATING provisioning only/)).toBeNull();
    await fireEvent.blur(seats);
    expect(screen.getByText(/seats apply to FLOATING provisioning only/)).toBeTruthy();
    expect(seats.getAttribute('aria-invalid')).toBe('true');

    await fireEvent.input(screen.getByLabelText('Provisioning'), { target: { value: 'FLOATING' } });
    flushSync();
    expect(screen.queryByText(/seats apply to FLOATING provisioning only/)).toBeNull();
  });

  it('adds a numeric limit for the first feature not switched on, and edits it', async () => {
    const draft = $state({ ...emptyDraft(), features: ['export'] });
    const features = [
      { code: 'export', name: 'Export' },
      { code: 'projects', name: 'Projects' },
    ];
    render(TermsFields, { draft, features, fields: ['features', 'entitlements'] });
    await fireEvent.click(screen.getByRole('button', { name: 'Add limit' }));
    flushSync();
    expect(draft.entitlements).toEqual([{ feature: 'projects', limit: '10' }]);
    await fireEvent.input(screen.getByLabelText('Limit'), { target: { value: '25' } });
    expect(draft.entitlements[0]!.limit).toBe('25');
    await fireEvent.click(screen.getByRole('button', { name: 'Remove limit 1' }));
    flushSync();
    expect(draft.entitlements).toEqual([]);
  });

  it('renders only the requested fields', () => {
    const draft = $state(emptyDraft());
    render(TermsFields, { draft, fields: ['maxActivations', 'features'] });
    expect(screen.getByLabelText('Max activations')).toBeTruthy();
    expect(screen.queryByLabelText('License type')).toBeNull();
    expect(screen.queryByLabelText('Seats')).toBeNull();
  });
});

describe('FormDialog', () => {
  it('checks required fields and rules before submitting, then maps server field errors', async () => {
    const onsubmit = vi.fn(async () => ({ message: 'code: already used', fields: { code: 'is already used' } }));
    render(FormDialog, {
      open: true,
      title: 'New product',
      submitLabel: 'Create',
      fields: [
        { name: 'name', label: 'Name', required: true },
        { name: 'code', label: 'Code', required: true, check: (v: string) => (v.includes(' ') ? 'has a space' : null) },
      ],
      onsubmit,
    });
    await fireEvent.click(screen.getByRole('button', { name: 'Create' }));
    expect(onsubmit).not.toHaveBeenCalled();
    expect(screen.getByText('Name is required')).toBeTruthy();

    await fireEvent.input(screen.getByLabelText('Name'), { target: { value: ' Studio ' } });
    await fireEvent.input(screen.getByLabelText('Code'), { target: { value: 'a b' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Create' }));
    expect(screen.getByText('Code has a space')).toBeTruthy();
    expect(onsubmit).not.toHaveBeenCalled();

    await fireEvent.input(screen.getByLabelText('Code'), { target: { value: 'studio' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Create' }));
    await vi.waitFor(() => expect(onsubmit).toHaveBeenCalledWith({ name: 'Studio', code: 'studio' }));
    await screen.findByText('Code is already used');
    expect(screen.getByRole('alert').textContent).toContain('code: already used');
  });
});

describe('ConfirmDialog', () => {
  it('keeps the dialog open with the server message when the action fails', async () => {
    const onconfirm = vi.fn(async () => 'License is already revoked');
    render(ConfirmDialog, { open: true, title: 'Revoke?', confirmLabel: 'Revoke', danger: true, onconfirm, children: text('Permanent.') });
    await fireEvent.click(screen.getByRole('button', { name: 'Revoke' }));
    await screen.findByText('License is already revoked');
    expect(onconfirm).toHaveBeenCalledOnce();
    expect(screen.getByText('Permanent.')).toBeTruthy();
  });

  it('closes when the action succeeds', async () => {
    const onconfirm = vi.fn(async () => null);
    render(ConfirmDialog, { open: true, title: 'Suspend?', confirmLabel: 'Suspend', onconfirm, children: text('Reversible.') });
    await fireEvent.click(screen.getByRole('button', { name: 'Suspend' }));
    await vi.waitFor(() => expect(screen.queryByText('Reversible.')).toBeNull());
  });
});
